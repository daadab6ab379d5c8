"""The intake and merges: a merged member's id leads to the survivor; an event naming
identities of two members is refused (``on_sure_match: reject``) or merges them (``merge``)."""

from __future__ import annotations

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.models import Event, Member, MemberMerge, Programme
from tests.fixtures.events import enrolment, purchase
from tests.fixtures.factories import Api, make_member, make_programme
from tests.merges.conftest import status


def _events_of(database: Database, member: Member) -> int:
    with database.transaction(readonly=True) as session:
        return session.scalar(select(func.count()).where(Event.member_id == member.id)) or 0


def _two(database: Database, programme: Programme) -> tuple[Member, Member]:
    older = make_member(database, programme, card="EC3000001")
    newer = make_member(database, programme, email="paul@example.org")
    return older, newer


def test_an_event_for_a_merged_member_goes_to_the_survivor(api: Api, database: Database) -> None:
    older, newer = _two(database, api.programme)
    merged = api.post(f"/members/{older.id}/merge", json={"duplicate_id": str(newer.id)})
    assert merged.status_code == 201

    response = api.post("/events", json=purchase({"id": str(newer.id)}), scope="integration")

    assert response.status_code in (200, 201), response.text
    assert response.json()["member_id"] == str(older.id)
    assert (_events_of(database, older), _events_of(database, newer)) == (1, 0)


def test_identities_of_two_members_are_refused_by_default(api: Api, database: Database) -> None:
    older, newer = _two(database, api.programme)
    body = purchase({"card": "EC3000001", "email": "paul@example.org"})

    response = api.post("/events", json=body, scope="integration")

    assert response.status_code == 409
    assert (status(database, older.id), status(database, newer.id)) == ("active", "active")
    assert _events_of(database, older) + _events_of(database, newer) == 0


def test_with_merge_the_newer_member_is_merged_into_the_older(
    database: Database, api_factory: object
) -> None:
    programme = make_programme(database, settings={"merge": {"on_sure_match": "merge"}})
    api = api_factory(programme)  # type: ignore[operator]
    older, newer = _two(database, programme)

    response = api.post(
        "/events",
        json=purchase({"card": "EC3000001", "email": "paul@example.org"}),
        scope="integration",
    )

    assert response.status_code in (200, 201), response.text
    assert response.json()["member_id"] == str(older.id)
    assert status(database, newer.id) == "merged"
    with database.transaction(readonly=True) as session:
        record = session.scalar(select(MemberMerge).where(MemberMerge.duplicate_id == newer.id))
    assert record is not None
    assert (record.survivor_id, record.source) == (older.id, "event")
    # An enrolment naming both (as the sign-up form of a store customer would) is the
    # older member's, already enrolled.
    again = api.post(
        "/events",
        json=enrolment({"card": "EC3000001", "email": "paul@example.org"}),
        scope="integration",
    )
    assert again.json()["member_id"] == str(older.id)
