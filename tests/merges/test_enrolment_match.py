"""An enrolment whose profile is a sure match of a member: with ``on_sure_match: merge`` it is
that member's (an already-enrolled member's profile update, the new card linked to them); with
``reject`` (the default) it enrols a new member as before."""

from __future__ import annotations

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.members import service as members
from fidelia.models import Member, Programme
from tests.fixtures.events import enrolment
from tests.fixtures.factories import Api, make_member, make_programme

PROFILE = {"first_name": "Paul", "attributes": {"email": "Paul@Example.org"}}


def _count(database: Database, programme: Programme) -> int:
    with database.transaction(readonly=True) as session:
        query = select(func.count()).where(Member.programme_id == programme.id)
        return session.scalar(query) or 0


def _holder_of_card(database: Database, programme: Programme, card: str) -> object:
    with database.transaction(readonly=True) as session:
        ref = members.MemberRef(card=card)
        return members.lookup(session, programme=programme, ref=ref).id


def test_with_merge_a_sure_match_enrolment_is_the_existing_members(
    database: Database, api_factory: object
) -> None:
    programme = make_programme(database, settings={"merge": {"on_sure_match": "merge"}})
    api: Api = api_factory(programme)  # type: ignore[operator]
    known = make_member(database, programme, email="paul@example.org")
    before = _count(database, programme)

    response = api.post(
        "/events", json=enrolment({"card": "EC5000001"}, profile=PROFILE), scope="integration"
    )

    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["member_id"], body["member_created"]) == (str(known.id), False)
    assert body["already_enrolled"] is True
    assert _count(database, programme) == before
    assert _holder_of_card(database, programme, "EC5000001") == known.id


def test_with_reject_a_sure_match_enrolment_enrols_a_new_member(
    database: Database, api_factory: object
) -> None:
    programme = make_programme(database, settings={"merge": {"on_sure_match": "reject"}})
    api: Api = api_factory(programme)  # type: ignore[operator]
    known = make_member(database, programme, email="paul@example.org")
    before = _count(database, programme)

    response = api.post(
        "/events", json=enrolment({"card": "EC5000001"}, profile=PROFILE), scope="integration"
    )

    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert body["member_created"] is True
    assert body["member_id"] != str(known.id)
    assert _count(database, programme) == before + 1


def test_with_merge_an_enrolment_matching_nobody_enrols_a_new_member(
    database: Database, api_factory: object
) -> None:
    programme = make_programme(database, settings={"merge": {"on_sure_match": "merge"}})
    api: Api = api_factory(programme)  # type: ignore[operator]
    make_member(database, programme, email="paul@example.org")
    profile = {"first_name": "Rita", "attributes": {"email": "rita@example.org"}}

    response = api.post(
        "/events", json=enrolment({"card": "EC5000002"}, profile=profile), scope="integration"
    )

    assert response.status_code in (200, 201), response.text
    assert response.json()["member_created"] is True
