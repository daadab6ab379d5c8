"""The member status history: every change with its reason, when, and which key made it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fidelia.db import Database
from fidelia.models import MemberStatusChange
from tests.fixtures.factories import Api, count_rows


def history(api: Api, member_id: str) -> list[dict[str, object]]:
    response = api.get(f"/members/{member_id}/status/history", scope="read")
    assert response.status_code == 200, response.text
    return list(response.json())


def changes_of(database: Database, member_id: str) -> int:
    mine = MemberStatusChange.member_id == uuid.UUID(member_id)
    return count_rows(database, MemberStatusChange, mine)


def test_status_changes_keep_their_reason_and_the_key_that_made_them(api: Api) -> None:
    member = api.post("/members", json={"email": "h@example.com"}).json()
    path = f"/members/{member['id']}/status"

    suspended = api.post(path, json={"status": "suspended", "reason": "chargeback on order 42"})
    back = api.post(path, json={"status": "active"})

    assert (suspended.status_code, back.status_code) == (200, 200)
    assert suspended.json()["status"] == "suspended"
    joined, suspension, reactivation = history(api, member["id"])
    assert (joined["from_status"], joined["to_status"], joined["reason"]) == (
        None,
        "active",
        "enrolment",
    )
    assert joined["event_id"] == member["enrolment"]["event_id"]
    assert (suspension["from_status"], suspension["to_status"]) == ("active", "suspended")
    assert suspension["reason"] == "chargeback on order 42"
    assert suspension["event_id"] is None
    assert (reactivation["from_status"], reactivation["to_status"]) == ("suspended", "active")
    assert reactivation["reason"] is None
    keys = api.get("/api-keys").json()  # the admin key made both changes
    assert suspension["actor"] == reactivation["actor"]
    assert suspension["actor"].startswith("api_key:")
    assert suspension["actor"].removeprefix("api_key:") in {k["id"] for k in keys}
    assert suspension["at"] <= reactivation["at"]


def test_a_refused_transition_is_409_naming_the_status_and_records_nothing(
    api: Api, database: Database
) -> None:
    member = api.post("/members", json={"email": "c@example.com"}).json()
    path = f"/members/{member['id']}/status"
    api.post(path, json={"status": "closed", "reason": "asked to leave"})

    response = api.post(path, json={"status": "active", "reason": "changed her mind"})

    assert response.status_code == 409
    assert response.json()["fields"][0]["loc"] == ["body", "status"]
    assert [h["to_status"] for h in history(api, member["id"])] == ["active", "closed"]
    assert changes_of(database, member["id"]) == 2


def test_asking_for_the_current_status_records_nothing(api: Api, database: Database) -> None:
    member = api.post("/members", json={"email": "same@example.com"}).json()

    response = api.post(f"/members/{member['id']}/status", json={"status": "active"})

    assert response.status_code == 200
    assert changes_of(database, member["id"]) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"status": "suspended", "reason": "x" * 501}, ["body", "reason"]),
        ({"status": "asleep"}, ["body", "status"]),
        ({"status": "suspended", "why": "x"}, ["body", "why"]),
    ],
)
def test_a_bad_status_change_is_422_naming_the_field_and_records_nothing(
    api: Api, database: Database, body: dict[str, object], loc: list[str]
) -> None:
    member = api.post("/members", json={"email": "bad@example.com"}).json()

    response = api.post(f"/members/{member['id']}/status", json=body)

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == loc
    assert api.get(f"/members/{member['id']}").json()["status"] == "active"
    assert changes_of(database, member["id"]) == 1


def test_the_history_of_an_unknown_member_is_404_and_needs_a_key(api: Api) -> None:
    assert api.get(f"/members/{uuid.uuid4()}/status/history").status_code == 404
    member = api.post("/members", json={"email": "k@example.com"}).json()
    assert api.get(f"/members/{member['id']}/status/history", key=None).status_code == 401


def test_another_programme_cannot_read_the_history(
    api_factory: object, programme_factory: object, api: Api
) -> None:
    member = api.post("/members", json={"email": "o@example.com"}).json()
    other = api_factory(programme_factory())  # type: ignore[operator]

    assert other.get(f"/members/{member['id']}/status/history").status_code == 404


def test_the_status_history_is_append_only(api: Api, database: Database) -> None:
    member = api.post("/members", json={"email": "ao@example.com"}).json()

    member_id = uuid.UUID(member["id"])
    value = member_id if database.engine.dialect.name == "postgresql" else member_id.hex

    for statement in (
        "UPDATE member_status_changes SET reason = 'rewritten' WHERE member_id = :m",
        "DELETE FROM member_status_changes WHERE member_id = :m",
    ):
        with pytest.raises(DBAPIError), database.transaction() as session:
            session.execute(text(statement), {"m": value})
    assert changes_of(database, member["id"]) == 1
