"""Concurrency proofs on PostgreSQL: threads, each with its own session and transaction."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from fidelia.db import Database
from fidelia.errors import FideliaError
from fidelia.models import Programme, Redemption, Reward
from fidelia.rewards import pools, redemptions, vouchers
from fidelia.rewards.errors import PoolExhausted
from tests.fixtures.factories import count_rows
from tests.rewards.conftest import (
    T0,
    assert_verified,
    make_pool,
    make_reward,
    points,
    stock,
    vouchers_of,
)

pytestmark = pytest.mark.postgres_only
NewMember = Callable[..., uuid.UUID]


def in_threads(n: int, work: Callable[[int], None]) -> list[BaseException | None]:
    barrier = threading.Barrier(n)
    outcomes: list[BaseException | None] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # the outcome is what the test checks
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def redeem_in_thread(
    database: Database, p: Programme, member_ids: list[uuid.UUID], reward: str
) -> Callable[[int], None]:
    def work(i: int) -> None:
        with database.transaction() as s:
            redemptions.redeem(
                s,
                programme=p,
                member_id=member_ids[i],
                reward=reward,
                idempotency_key=f"k{i}",
                now=T0,
            )

    return work


def only_conflicts(outcomes: list[BaseException | None]) -> bool:
    return all(
        isinstance(o, FideliaError) and o.status_code == 409 for o in outcomes if o is not None
    )


def test_ten_members_race_for_the_last_unit(
    database: Database,
    rewards_programme: Programme,
    new_member: NewMember,
    voucher_reward: Reward,
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p = rewards_programme
    with database.transaction() as s:
        s.get(Reward, voucher_reward.id).stock = 1  # type: ignore[union-attr]
    members = [new_member(300) for _ in range(10)]
    outcomes = in_threads(10, redeem_in_thread(database, p, members, "voucher-10"))
    assert outcomes.count(None) == 1
    assert only_conflicts(outcomes)
    assert stock(database, voucher_reward.id) == 0
    assert sorted(points(database, p, m) for m in members) == [100] + [300] * 9
    assert len(vouchers_of(database, p)) == 1
    assert_verified(database, p)


def test_twenty_redemptions_against_points_covering_one(
    database: Database, rewards_programme: Programme, new_member: NewMember, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p = rewards_programme
    rewards = [
        make_reward(database, p, code=f"gift-{i}", cost_points=200, stock=5) for i in range(20)
    ]
    m = new_member(120, 100)

    def work(i: int) -> None:
        with database.transaction() as s:
            redemptions.redeem(
                s, programme=p, member_id=m, reward=rewards[i].code, idempotency_key=f"k{i}", now=T0
            )

    outcomes = in_threads(20, work)
    assert outcomes.count(None) == 1
    assert only_conflicts(outcomes)
    assert points(database, p, m) == 20
    assert count_rows(database, Redemption, Redemption.programme_id == p.id) == 1
    assert sorted(stock(database, r.id) or 0 for r in rewards) == [4] + [5] * 19
    assert_verified(database, p)


def test_the_same_key_retried_concurrently_spends_once(
    database: Database,
    rewards_programme: Programme,
    new_member: NewMember,
    voucher_reward: Reward,
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p, m = rewards_programme, new_member(1000)
    ids: list[uuid.UUID] = []

    def work(i: int) -> None:
        with database.transaction() as s:
            ids.append(
                redemptions.redeem(
                    s, programme=p, member_id=m, reward="voucher-10", idempotency_key="same", now=T0
                ).id
            )

    outcomes = in_threads(8, work)
    assert outcomes == [None] * 8
    assert len(set(ids)) == 1
    assert points(database, p, m) == 800
    assert_verified(database, p)


def test_concurrent_issues_from_a_pool_of_three_codes_hand_out_each_once(
    database: Database, rewards_programme: Programme, new_member: NewMember, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p = rewards_programme
    make_pool(database, p, code="imported", pattern=None)
    with database.transaction() as s:
        stocked = pools.import_codes(
            s, programme=p, code="imported", raw=["AAA-1", "BBB-2", "CCC-3"], bearer=False
        )
    members = [new_member() for _ in range(8)]
    issued: list[str] = []

    def work(i: int) -> None:
        with database.transaction() as s:
            voucher = vouchers.issue_voucher(
                s, programme=p, member_id=members[i], pool="imported", source="rule",
                idempotency_key=f"k{i}", now=T0,
            )  # fmt: skip
            issued.append(voucher.code)

    outcomes = in_threads(8, work)
    assert outcomes.count(None) == 3
    assert only_conflicts(outcomes)
    assert all(isinstance(o, PoolExhausted) for o in outcomes if o is not None)
    assert sorted(issued) == sorted(stocked)
    held = {v.code: v.member_id for v in vouchers_of(database, p) if v.status == "active"}
    assert sorted(held) == sorted(stocked)
    assert len(set(held.values())) == 3


def test_redemptions_racing_for_a_pool_of_two_codes_spend_only_for_those_issued(
    database: Database, rewards_programme: Programme, new_member: NewMember, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p = rewards_programme
    make_pool(database, p, code="imported", pattern=None)
    with database.transaction() as s:
        pools.import_codes(s, programme=p, code="imported", raw=["AAA-1", "BBB-2"], bearer=False)
    make_reward(database, p, code="scarce-voucher", kind="voucher", pool="imported")
    members = [new_member(150, 150) for _ in range(6)]
    outcomes = in_threads(6, redeem_in_thread(database, p, members, "scarce-voucher"))
    assert outcomes.count(None) == 2
    assert only_conflicts(outcomes)
    assert sorted(points(database, p, m) for m in members) == [100, 100] + [300] * 4
    assert count_rows(database, Redemption, Redemption.programme_id == p.id) == 2
    assert sorted(v.status for v in vouchers_of(database, p)) == ["active", "active"]
    assert_verified(database, p)
