"""Right to erasure: ``POST /members/{id}/erase`` erases personal data everywhere (the event log
and consent history included, through the one exception their triggers allow), leaves the
ledger, counts and balances as they were, and is recorded."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from fidelia.db import Database
from fidelia.ledger.verify import verify
from fidelia.models import Event, Member, MemberErasure, MemberStatusChange
from fidelia.models.audit import AuditEntry
from fidelia.privacy import close_account
from tests.fixtures.events import event
from tests.fixtures.factories import Api, count_rows
from tests.privacy.conftest import buy, consent, enrol


def _accounts(api: Api, member_id: str) -> list[dict[str, Any]]:
    data = api.get(f"/members/{member_id}/export", scope="read").json()["data"]
    return sorted(
        (
            {k: a[k] for k in ("wallet_id", "available", "pending", "lifetime_earned")}
            for a in data["ledger_accounts"]
        ),
        key=lambda a: str(a["wallet_id"]),
    )


def _members(database: Database, api: Api) -> int:
    return count_rows(database, Member, Member.programme_id == api.programme.id)


def test_erasure_removes_personal_data_everywhere_and_keeps_the_ledger(
    demo: Api, database: Database
) -> None:
    member_id = enrol(demo, "ann.erase@example.com", postal_code="75011", card="CARD-778899")
    buy(demo, member_id, "order-e1", "40.00")
    consent(demo, member_id, "email", True, "shop-form-ann")
    balances_before = _accounts(demo, member_id)
    members_before = _members(database, demo)

    response = demo.post(f"/members/{member_id}/erase", scope="admin")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["already_erased"] is False
    assert body["events_rewritten"] >= 1
    assert body["actor"].startswith("api_key:")
    exported = demo.get(f"/members/{member_id}/export", scope="read")
    for personal in ("ann.erase@example.com", "Ann", "Lee", "75011", "CARD-778899", "shop-form"):
        assert personal not in exported.text, personal
    member = exported.json()["member"]
    assert member["status"] == "closed"
    assert (member["first_name"], member["postal_code"], member["attributes"]) == (None, None, {})
    # the ledger, balances and counts are as they were
    assert _accounts(demo, member_id) == balances_before
    assert _members(database, demo) == members_before
    with database.transaction(readonly=True) as session:
        assert verify(session, programme_id=demo.programme.id).ok
    # the audit log keeps the calls (the enrolment, the consent, the erasure), not the values
    audit_log = demo.get("/audit", params={"limit": 500})
    assert "POST /members/{member_id}/erase" in audit_log.text
    for personal in ("ann.erase@example.com", "Ann", "75011", "CARD-778899"):
        assert personal not in audit_log.text, personal
    # the old identities find nobody, and the person may enrol again as a new member
    lookup = demo.get("/members/lookup", params={"email": "ann.erase@example.com"}, scope="read")
    assert lookup.status_code == 404
    again = enrol(demo, "ann.erase@example.com")
    assert again != member_id
    # recorded: when and by whom, not what
    with database.transaction(readonly=True) as session:
        record = session.scalars(
            select(MemberErasure).where(MemberErasure.member_id == uuid.UUID(member_id))
        ).one()
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.programme_id == demo.programme.id, AuditEntry.action == "member.erase"
            )
        ).one()
    assert record.reason == "request"
    assert (entry.target_id, entry.before, entry.after) == (member_id, None, None)


def test_custom_event_properties_declared_personal_are_erased_the_rest_kept(
    demo: Api, database: Database
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "stars": {"type": "integer"},
            "comment": {"type": "string", "x-personal": True},
        },
    }
    declared = demo.put("/event-types/review", json={"schema": schema})
    assert declared.status_code == 200, declared.text
    member_id = enrol(demo, "rev@example.com")
    sent = demo.post(
        "/events",
        json=event("review", {"id": member_id}, {"stars": 4, "comment": "I am Ann, flat 3B"}),
        scope="integration",
    )
    assert sent.status_code == 201, sent.text

    assert demo.post(f"/members/{member_id}/erase").status_code == 200

    with database.transaction(readonly=True) as session:
        (properties,) = session.scalars(
            select(Event.properties).where(
                Event.member_id == uuid.UUID(member_id), Event.type == "review"
            )
        ).all()
    assert properties == {"stars": 4, "comment": "erased"}


def test_the_event_log_stays_append_only_for_everyone_else(demo: Api, database: Database) -> None:
    kept = enrol(demo, "kept@example.com")
    erased = enrol(demo, "gone@example.com")
    assert demo.post(f"/members/{erased}/erase").status_code == 200

    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(
            update(Event).where(Event.member_id == uuid.UUID(kept)).values(properties={})
        )
    # even for the erased member, only the personal column may change
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(update(Event).where(Event.member_id == uuid.UUID(erased)).values(store="x"))
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(delete(Event).where(Event.member_id == uuid.UUID(erased)))


def test_erasing_an_unknown_member_is_404_and_changes_nothing(
    demo: Api, database: Database
) -> None:
    response = demo.post(f"/members/{uuid.uuid4()}/erase")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    with database.transaction(readonly=True) as session:
        erasures = session.scalar(
            select(func.count())
            .select_from(MemberErasure)
            .where(MemberErasure.programme_id == demo.programme.id)
        )
    assert erasures == 0


def test_erasing_twice_keeps_the_first_record(demo: Api) -> None:
    member_id = enrol(demo, "twice@example.com")
    first = demo.post(f"/members/{member_id}/erase").json()

    second = demo.post(f"/members/{member_id}/erase")

    assert second.status_code == 200
    assert second.json()["already_erased"] is True
    assert second.json()["erased_at"] == first["erased_at"]


def test_erasure_needs_the_admin_scope(demo: Api) -> None:
    member_id = enrol(demo, "scoped@example.com")

    assert demo.post(f"/members/{member_id}/erase", scope="integration").status_code == 403
    assert demo.get(f"/members/{member_id}", scope="read").json()["first_name"] == "Ann"


def test_close_account_is_a_member_action(demo: Api, database: Database) -> None:
    member_id = enrol(demo, "closer@example.com")

    with database.transaction() as session:
        member = close_account(
            session, programme=demo.programme, member_id=uuid.UUID(member_id), actor="portal"
        )
    assert member.status == "closed"
    with database.transaction(readonly=True) as session:
        last = session.scalars(
            select(MemberStatusChange)
            .where(MemberStatusChange.member_id == uuid.UUID(member_id))
            .order_by(MemberStatusChange.at.desc(), MemberStatusChange.id.desc())
        ).first()
    assert last is not None
    assert (last.to_status, last.actor, last.reason) == ("closed", "portal", "member request")
