"""Direct ledger writes naming a merged member are refused with a 409 naming the survivor,
and change nothing (the intake, instead, follows a merged member's id to its survivor)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.ledger.followed import MemberMerged
from fidelia.models import Member, Programme
from tests.fixtures.factories import Api, make_member
from tests.merges.conftest import balance, do_merge, earn


def test_an_adjustment_for_a_merged_member_is_refused_naming_the_survivor(
    api: Api, database: Database
) -> None:
    survivor = make_member(database, api.programme, card="EC6000001")
    duplicate = make_member(database, api.programme, email="zoe@example.org")
    merged = api.post(f"/members/{survivor.id}/merge", json={"duplicate_id": str(duplicate.id)})
    assert merged.status_code == 201, merged.text
    body = {
        "member_id": str(duplicate.id),
        "wallet": "points",
        "amount": "50",
        "reason": "goodwill",
        "actor": "ops@example.org",
        "idempotency_key": "adj-merged-1",
    }

    response = api.post("/ledger/adjustments", json=body)

    assert response.status_code == 409, response.text
    error = response.json()
    assert error["error"] == "member_merged"
    assert str(survivor.id) in error["detail"]
    assert error["fields"][0]["loc"][-1] == "member_id"
    assert (balance(database, duplicate.id), balance(database, survivor.id)) == ((0, 0), (0, 0))


def test_a_spend_for_a_merged_member_is_refused_and_changes_nothing(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor = person(card="EC6000002")
    duplicate = person(email="yann@example.org")
    earn(database, merge_programme, duplicate.id, 200)
    do_merge(database, merge_programme, survivor.id, duplicate.id)

    with pytest.raises(MemberMerged, match=str(survivor.id)), database.transaction() as session:
        ops.spend(
            session,
            programme=merge_programme,
            member_id=duplicate.id,
            wallet="points",
            amount=50,
            idempotency_key="spend-merged-1",
        )

    assert balance(database, survivor.id) == (200, 0)
    assert balance(database, duplicate.id) == (0, 0)
