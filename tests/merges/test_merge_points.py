"""A merge moves the duplicate's points lot by lot, with their dates; an unmerge gives back
what is left of them, and reports what the survivor used meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fidelia.db import Database
from fidelia.members import service as members
from fidelia.models import Member, Programme
from tests.merges.conftest import (
    T0,
    assert_verified,
    balance,
    do_merge,
    do_unmerge,
    earn,
    lots,
    owned,
    spend,
    status,
)


def _two_people(
    database: Database, programme: Programme, person: Callable[..., Member]
) -> tuple[Member, Member]:
    survivor = person(card="EC1000001")
    duplicate = person(email="laure@example.org", card="EC1000002")
    earn(database, programme, survivor.id, 100, days=200)
    earn(database, programme, duplicate.id, 300, days=30)
    earn(database, programme, duplicate.id, 50, days=None)
    earn(database, programme, duplicate.id, 70, days=90, pending_days=14)
    spend(database, programme, duplicate.id, 120)  # 180 left of the lot expiring first
    return survivor, duplicate


def test_a_merge_moves_every_lot_with_its_dates_and_creates_nothing(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _two_people(database, merge_programme, person)
    theirs, mine = lots(database, duplicate.id), lots(database, survivor.id)

    record = do_merge(database, merge_programme, survivor.id, duplicate.id)

    assert balance(database, survivor.id) == (100 + 180 + 50, 70)
    assert balance(database, duplicate.id) == (0, 0)
    assert lots(database, survivor.id) == sorted(mine + theirs, key=repr)
    assert lots(database, duplicate.id) == []
    assert status(database, duplicate.id) == "merged"
    assert owned(database, duplicate.id)["identities"] == 0
    assert owned(database, survivor.id)["identities"] == 3
    assert record.details["wallets"][0]["amount"] == 300
    assert_verified(database, merge_programme)


def test_the_duplicates_identities_lead_to_the_survivor(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _two_people(database, merge_programme, person)
    do_merge(database, merge_programme, survivor.id, duplicate.id)

    with database.transaction(readonly=True) as session:
        found = members.lookup(
            session,
            programme=merge_programme,
            ref=members.MemberRef(email="Laure@Example.org"),
        )
    assert found.id == survivor.id


def test_an_unmerge_gives_everything_back_exactly(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _two_people(database, merge_programme, person)
    theirs, mine = lots(database, duplicate.id), lots(database, survivor.id)
    before = (balance(database, survivor.id), balance(database, duplicate.id))
    record = do_merge(database, merge_programme, survivor.id, duplicate.id)

    undone = do_unmerge(database, merge_programme, survivor.id, record.id)

    assert (balance(database, survivor.id), balance(database, duplicate.id)) == before
    assert lots(database, duplicate.id) == theirs
    assert lots(database, survivor.id) == mine
    assert status(database, duplicate.id) == "active"
    assert owned(database, duplicate.id)["identities"] == 2
    assert undone.unmerge_report is not None
    assert undone.unmerge_report["wallets"][0]["shortfall"] == "0"
    assert_verified(database, merge_programme)


def test_points_spent_meanwhile_are_the_reported_shortfall(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _two_people(database, merge_programme, person)
    record = do_merge(database, merge_programme, survivor.id, duplicate.id)
    # Soonest expiring first: the duplicate's 180 (30 days), then 100 of the survivor's lot...
    spend(database, merge_programme, survivor.id, 200, now=T0 + timedelta(days=1, hours=1))

    undone = do_unmerge(database, merge_programme, survivor.id, record.id)

    assert balance(database, duplicate.id) == (50, 70)  # what was left of its lots
    assert balance(database, survivor.id) == (100 - 20, 0)
    report = undone.unmerge_report
    assert report is not None
    assert report["wallets"][0]["shortfall"] == "180"
    assert report["wallets"][0]["returned"] == "120"
    assert_verified(database, merge_programme)
