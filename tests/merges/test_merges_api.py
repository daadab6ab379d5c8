"""The merge API: fold, list, undo; bad input is refused and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.ledger import wallets
from fidelia.models import Event, Member, MemberMerge, MemberStatusChange, Programme
from tests.fixtures.events import purchase
from tests.fixtures.factories import Api, make_member
from tests.merges.conftest import assert_verified, balance, earn, lots, owned, status


def _setup(database: Database, api: Api) -> tuple[Member, Member]:
    with database.transaction() as session:
        wallets.ensure_default_wallets(session, programme=api.programme)
    survivor = make_member(database, api.programme, card="EC2000001", first_name="Laure")
    duplicate = make_member(
        database, api.programme, email="laure.moulin@example.org", postal_code="69003"
    )
    earn(database, api.programme, survivor.id, 40)
    earn(database, api.programme, duplicate.id, 60, pending_days=10)
    return survivor, duplicate


def _snapshot(database: Database, *members: Member) -> list[Any]:
    out: list[Any] = []
    for member in members:
        out += [balance(database, member.id), lots(database, member.id)]
        out += [owned(database, member.id), status(database, member.id)]
    with database.transaction(readonly=True) as session:
        out.append(session.scalar(select(func.count()).select_from(MemberMerge)))
        out.append(session.scalar(select(func.count()).select_from(MemberStatusChange)))
    return out


def test_merge_then_list_then_unmerge(api: Api, database: Database) -> None:
    survivor, duplicate = _setup(database, api)
    api.post(
        "/events",
        json={
            "id": f"ev-{uuid.uuid4()}",
            "type": "consent_changed",
            "occurred_at": "2026-11-20T10:00:00+01:00",
            "member": {"email": "laure.moulin@example.org"},
            "properties": {"channel": "sms", "granted": True},
        },
        scope="integration",
    )

    response = api.post(
        f"/members/{survivor.id}/merge",
        json={"duplicate_id": str(duplicate.id), "reason": "same person"},
    )

    assert response.status_code == 201, response.text
    merged = response.json()
    assert merged["status"] == "merged"
    assert merged["moved"]["identity"] == 1
    assert merged["wallets"][0]["moved"] == "60"
    member = api.get(f"/members/{survivor.id}").json()
    assert member["postal_code"] == "69003"
    assert [c["channel"] for c in member["consents"]] == ["sms"]
    assert api.get(f"/members/{duplicate.id}").json()["status"] == "merged"
    found = api.get("/members/lookup", params={"email": "LAURE.MOULIN@example.org"}).json()
    assert found["id"] == str(survivor.id)
    listed = api.get(f"/members/{duplicate.id}/merges").json()
    assert [m["id"] for m in listed["items"]] == [merged["id"]]

    undone = api.post(f"/members/{survivor.id}/unmerge", json={"merge_id": merged["id"]})

    assert undone.status_code == 200, undone.text
    assert undone.json()["unmerge"]["wallets"][0]["shortfall"] == "0"
    assert balance(database, duplicate.id) == (0, 60)
    member = api.get(f"/members/{survivor.id}").json()
    assert member["postal_code"] is None
    assert member["consents"] == []
    assert api.get(f"/members/{duplicate.id}").json()["status"] == "active"
    assert_verified(database, api.programme)


def _refused(
    api: Api, database: Database, path: str, body: dict[str, Any], *members: Member
) -> Any:
    before = _snapshot(database, *members)
    response = api.post(path, json=body)
    assert _snapshot(database, *members) == before
    return response


def test_a_member_cannot_be_merged_into_itself(api: Api, database: Database) -> None:
    survivor, _ = _setup(database, api)
    body = {"duplicate_id": str(survivor.id)}

    response = _refused(api, database, f"/members/{survivor.id}/merge", body, survivor)

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "duplicate_id"]


def test_a_member_of_another_programme_is_not_found(
    api: Api, database: Database, programme_factory: Callable[..., Programme]
) -> None:
    survivor, _ = _setup(database, api)
    stranger = make_member(database, programme_factory())
    body = {"duplicate_id": str(stranger.id)}

    response = _refused(api, database, f"/members/{survivor.id}/merge", body, survivor, stranger)

    assert response.status_code == 404
    assert response.json()["fields"][0]["loc"] == ["body", "duplicate_id"]


def test_closed_and_merged_members_are_refused(api: Api, database: Database) -> None:
    survivor, duplicate = _setup(database, api)
    other = make_member(database, api.programme)
    assert api.post(f"/members/{other.id}/status", json={"status": "closed"}).is_success
    first = api.post(f"/members/{survivor.id}/merge", json={"duplicate_id": str(duplicate.id)})
    assert first.status_code == 201

    cases = [
        (survivor, other),  # closed duplicate
        (other, survivor),  # closed survivor
        (survivor, duplicate),  # merged duplicate (a retry)
        (duplicate, other),  # merged survivor
    ]
    for into, frm in cases:
        body = {"duplicate_id": str(frm.id)}
        response = _refused(api, database, f"/members/{into.id}/merge", body, into, frm)
        assert response.status_code == 409, (into, frm)
        assert response.json()["error"] == "not_mergeable"


def test_unmerge_refusals(api: Api, database: Database) -> None:
    survivor, duplicate = _setup(database, api)
    merged = api.post(f"/members/{survivor.id}/merge", json={"duplicate_id": str(duplicate.id)})
    merge_id = merged.json()["id"]
    later = make_member(database, api.programme)
    path = f"/members/{survivor.id}/unmerge"

    unknown = _refused(api, database, path, {"merge_id": str(uuid.uuid4())}, survivor, duplicate)
    assert unknown.status_code == 404
    assert unknown.json()["fields"][0]["loc"] == ["body", "merge_id"]
    wrong = _refused(
        api, database, f"/members/{later.id}/unmerge", {"merge_id": merge_id}, survivor, duplicate
    )
    assert wrong.status_code == 404
    # The survivor is merged into another member since: that merge must be undone first.
    on_top = api.post(f"/members/{later.id}/merge", json={"duplicate_id": str(survivor.id)})
    assert on_top.status_code == 201
    blocked = _refused(api, database, path, {"merge_id": merge_id}, survivor, duplicate, later)
    assert blocked.status_code == 409
    assert blocked.json()["error"] == "cannot_unmerge"
    assert api.post(
        f"/members/{later.id}/unmerge", json={"merge_id": on_top.json()["id"]}
    ).is_success

    assert api.post(path, json={"merge_id": merge_id}).status_code == 200
    again = _refused(api, database, path, {"merge_id": merge_id}, survivor, duplicate)
    assert again.status_code == 409
    assert again.json()["error"] == "already_unmerged"
    assert_verified(database, api.programme)


def test_events_follow_the_merge_and_come_back(api: Api, database: Database) -> None:
    survivor, duplicate = _setup(database, api)
    for _ in range(3):
        sent = api.post(
            "/events",
            json=purchase({"email": "laure.moulin@example.org"}),
            scope="integration",
        )
        assert sent.status_code in (200, 201), sent.text

    def events_of(member: Member) -> int:
        with database.transaction(readonly=True) as session:
            return session.scalar(select(func.count()).where(Event.member_id == member.id)) or 0

    theirs = events_of(duplicate)
    assert theirs == 3
    merged = api.post(f"/members/{survivor.id}/merge", json={"duplicate_id": str(duplicate.id)})
    assert (events_of(duplicate), merged.json()["moved"]["event"]) == (0, theirs)
    history = api.get(f"/members/{survivor.id}/events").json()["items"]
    assert len(history) == events_of(survivor)

    api.post(f"/members/{survivor.id}/unmerge", json={"merge_id": merged.json()["id"]})
    assert events_of(duplicate) == theirs
