"""Privacy fixtures: a programme running the demo document (welcome voucher, tiers, badges,
1 € = 1 point) and a member with a history in it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fidelia.models import Programme
from fidelia.rules.demo import programme_document
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import Api


@pytest.fixture
def demo(
    api_factory: Callable[[Programme], Api], programme_factory: Callable[..., Programme]
) -> Api:
    api = api_factory(programme_factory())
    applied = api.put("/programme/document", json=programme_document())
    assert applied.status_code == 200, applied.text
    return api


def enrol(api: Api, email: str, **profile: Any) -> str:
    body = {"email": email, "first_name": "Ann", "last_name": "Lee", **profile}
    response = api.post("/members", json=body, scope="integration")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def buy(api: Api, member_id: str, order_id: str, amount: str = "40.00") -> dict[str, Any]:
    payload = purchase({"id": member_id}, order_id=order_id, lines=[line("sku-1", 1, amount)])
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    return dict(response.json())


def consent(api: Api, member_id: str, channel: str, granted: bool, source: str) -> None:
    body = {"channel": channel, "granted": granted, "source": source}
    response = api.post(f"/members/{member_id}/consents", json=body, scope="integration")
    assert response.status_code in (200, 201), response.text
