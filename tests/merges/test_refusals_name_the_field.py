"""A refused merge names the field at fault where the client sent it: the survivor is the
path's ``member_id``, the duplicate the body's ``duplicate_id``; nothing changes."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.models import Member, MemberMerge, Programme
from tests.fixtures.factories import Api, make_member


def _merges(database: Database, programme: Programme) -> int:
    with database.transaction(readonly=True) as session:
        query = select(func.count()).where(MemberMerge.programme_id == programme.id)
        return session.scalar(query) or 0


def _status(database: Database, member: Member) -> str:
    with database.transaction(readonly=True) as session:
        found = session.get(Member, member.id)
        assert found is not None
        return found.status


def test_a_closed_survivor_is_named_as_the_paths_member_id(api: Api, database: Database) -> None:
    survivor = make_member(database, api.programme)
    duplicate = make_member(database, api.programme)
    assert api.post(f"/members/{survivor.id}/status", json={"status": "closed"}).is_success

    response = api.post(f"/members/{survivor.id}/merge", json={"duplicate_id": str(duplicate.id)})

    assert response.status_code == 409
    assert response.json()["fields"][0]["loc"] == ["path", "member_id"]
    assert (_merges(database, api.programme), _status(database, duplicate)) == (0, "active")


def test_an_unknown_survivor_is_named_as_the_paths_member_id(
    api: Api, database: Database, programme_factory: Callable[..., Programme]
) -> None:
    stranger = make_member(database, programme_factory())
    duplicate = make_member(database, api.programme)

    response = api.post(f"/members/{stranger.id}/merge", json={"duplicate_id": str(duplicate.id)})

    assert response.status_code == 404
    assert response.json()["fields"][0]["loc"] == ["path", "member_id"]
    assert (_merges(database, api.programme), _status(database, duplicate)) == (0, "active")
