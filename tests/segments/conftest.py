"""Segment fixtures: a programme document with categories and a few segments, and helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api

NOW = datetime.now(UTC)


def document(*segments: dict[str, Any], categories: list[str] | None = None) -> dict[str, Any]:
    return {
        "rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}],
        "segments": {
            "categories": categories if categories is not None else ["cat-food", "dog-food"],
            "definitions": list(segments),
        },
    }


def segment(code: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "labels": {"fr": code.upper(), "en": code}, "condition": condition}


THREE_IN_90 = segment(
    "three-in-90", {"field": "events.purchase.count_90d", "op": "gte", "value": 3}
)
CAT_BUYERS = segment(
    "cat-buyers", {"field": "categories.cat-food.count_30d", "op": "gte", "value": 1}
)
SMS_NOT_EMAIL = segment(
    "sms-not-email",
    {
        "all": [
            {"field": "consents.sms", "op": "eq", "value": True},
            {"not": {"field": "consents.email", "op": "eq", "value": True}},
        ]
    },
)


def apply(api: Api, doc: dict[str, Any]) -> None:
    response = api.put("/programme/document", json=doc)
    assert response.status_code == 200, response.text


def enrol(api: Api, email: str, consents: list[dict[str, Any]] | None = None) -> str:
    payload = event(
        "enrolment",
        {"email": email},
        {"profile": {"first_name": "Ana"}, "consents": consents or []},
        occurred_at=NOW - timedelta(days=200),
    )
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    return str(response.json()["member_id"])


def buy(api: Api, member_id: str, *, days_ago: float, category: str = "toys") -> Any:
    payload = purchase(
        {"id": member_id},
        lines=[line("sku-1", 1, "10.00", category=category)],
        occurred_at=NOW - timedelta(days=days_ago),
    )
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    return response.json()


def segments_of(api: Api, member_id: str) -> list[str]:
    response = api.get(f"/members/{member_id}/segments", scope="read")
    assert response.status_code == 200, response.text
    return [m["segment"] for m in response.json()]
