"""The webhooks page (issue 16): owners add a subscription (secret shown once), a bad target
is refused with its reason and nothing saved; they pause and resume it; viewers only read."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import delete

from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.models import Programme, WebhookSubscription
from fidelia.users.service import Role
from tests.fixtures.factories import count_rows
from tests.web.conftest import Browser
from tests.webhooks.receiver import Receiver, serve


@pytest.fixture
def receiver(
    monkeypatch: pytest.MonkeyPatch, database: Database, programme: Programme
) -> Iterator[Receiver]:
    monkeypatch.setattr(get_settings(), "webhooks_allow_loopback", True)
    with serve(Receiver()) as running:
        yield running
    with database.transaction() as session:
        session.execute(
            delete(WebhookSubscription).where(WebhookSubscription.programme_id == programme.id)
        )


def subs(database: Database, programme: Programme) -> int:
    return count_rows(
        database, WebhookSubscription, WebhookSubscription.programme_id == programme.id
    )


def test_owner_adds_pauses_and_resumes_a_webhook(
    signed_in: Callable[..., Browser], database: Database, programme: Programme, receiver: Receiver
) -> None:
    owner = signed_in(programme, Role.owner)
    page = f"/admin/p/{programme.slug}/webhooks"
    assert owner.get(page).status_code == 200
    refused = owner.post(page, {"url": "http://example.com/hooks", "types": "points.*"})
    assert refused.status_code == 422
    assert "https" in refused.text
    assert subs(database, programme) == 0

    made = owner.post(page, {"url": receiver.url, "types": "points.*, tier.changed"})
    assert made.status_code == 201, made.text
    assert "whsec_" in made.text
    assert subs(database, programme) == 1
    listed = owner.get(page).text
    assert receiver.url in listed
    assert "whsec_" not in listed  # shown once
    with database.transaction(readonly=True) as session:
        sub = session.query(WebhookSubscription).filter_by(programme_id=programme.id).one()
    paused = owner.post(f"{page}/{sub.id}/status", {"status": "paused"})
    assert paused.status_code == 303
    assert "paused by hand" in owner.get(page).text
    owner.post(f"{page}/{sub.id}/status", {"status": "active"})
    assert "paused by hand" not in owner.get(page).text


def test_a_viewer_reads_but_cannot_add(
    signed_in: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    viewer = signed_in(programme, Role.analyst)
    page = f"/admin/p/{programme.slug}/webhooks"
    assert viewer.get(page).status_code == 200
    response = viewer.post(page, {"url": f"https://{uuid.uuid4().hex}.example/hooks"})
    assert response.status_code == 403
    assert subs(database, programme) == 0
