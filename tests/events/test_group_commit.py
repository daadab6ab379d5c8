"""Group commit (events/group.py): one transaction for the events that queued together, each
with its own outcome, refused events writing nothing, arrival order kept (issue 18)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update

from fidelia.auth import service as apikeys
from fidelia.auth.schemas import Scope
from fidelia.db import Database
from fidelia.errors import FideliaError, Unauthorized
from fidelia.events.schemas import EventIn, EventOutcome
from fidelia.intake.group import GroupCommit, Submission
from fidelia.ledger.verify import verify
from fidelia.models import Account, Event, LedgerTransaction, Programme
from fidelia.programmes import documents
from tests.fixtures.events import event, line, purchase, ref, return_of
from tests.fixtures.factories import make_member, make_programme

RULES: dict[str, Any] = {
    "rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}]
}


@pytest.fixture
def programme(database: Database) -> Programme:
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=RULES, actor="test")
        live = session.get(Programme, programme.id)
        assert live is not None
        return live


@pytest.fixture
def key_id(database: Database, programme: Programme) -> uuid.UUID:
    with database.transaction() as session:
        key, _ = apikeys.create(session, programme=programme, name="till", scope=Scope.integration)
        return key.id


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def run_group(
    database: Database,
    loop: asyncio.AbstractEventLoop,
    items: list[tuple[uuid.UUID, dict[str, Any]]],
    *,
    groups: int = 1,
) -> list[EventOutcome | BaseException]:
    """Commit ``items`` as ONE group, as the writer thread does, and collect each result."""
    committer = GroupCommit(database)
    futures = [loop.create_future() for _ in items]
    group = [
        Submission(key, EventIn.model_validate(payload), future, loop)
        for (key, payload), future in zip(items, futures, strict=True)
    ]
    committer.process(group)
    loop.run_until_complete(asyncio.sleep(0))  # deliver the results scheduled on the loop
    results: list[EventOutcome | BaseException] = []
    for future in futures:
        exc = future.exception()
        results.append(exc if exc is not None else future.result())
    assert committer.groups == groups  # 0: the group failed and ran request by request
    assert committer.grouped == len(items) * groups
    return results


def stored(database: Database, programme: Programme) -> set[str]:
    with database.transaction(readonly=True) as session:
        keys = session.scalars(
            select(Event.idempotency_key).where(Event.programme_id == programme.id)
        )
        return set(keys)


def postings(database: Database, programme: Programme) -> int:
    with database.transaction(readonly=True) as session:
        count = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.programme_id == programme.id)
        )
        return int(count or 0)


def test_refused_events_write_nothing_and_do_not_fail_the_group(
    database: Database, programme: Programme, key_id: uuid.UUID, loop: asyncio.AbstractEventLoop
) -> None:
    alice, bob = make_member(database, programme), make_member(database, programme)
    earlier = purchase(ref(alice), lines=[line("a", 1, "5.00")])
    [first] = run_group(database, loop, [(key_id, earlier)])
    assert isinstance(first, EventOutcome)
    assert first.status == "accepted"

    good = purchase(ref(alice), lines=[line("b", 2, "10.00")])
    unknown = purchase({"email": "nobody@example.com"})
    reused = purchase(ref(bob), id=earlier["id"])  # same id, other content
    invalid = purchase(ref(bob), total="1000.00")  # disagrees with its lines
    good_too = purchase(ref(bob), lines=[line("c", 1, "7.00")])
    results = run_group(
        database, loop, [(key_id, p) for p in (good, unknown, reused, invalid, good_too)]
    )

    assert all(isinstance(r, EventOutcome) for r in results)
    outcomes = [r for r in results if isinstance(r, EventOutcome)]
    assert [o.status for o in outcomes] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert [o.error for o in outcomes[1:4]] == [
        "unknown_member",
        "idempotency_conflict",
        "validation_error",
    ]
    assert outcomes[0].totals == {"points": 20}
    assert outcomes[4].totals == {"points": 7}
    assert all(o.index is None for o in outcomes)
    assert stored(database, programme) == {earlier["id"], good["id"], good_too["id"]}
    assert postings(database, programme) == 3
    with database.transaction(readonly=True) as session:
        assert verify(session, programme_id=programme.id).ok


def test_events_of_one_member_apply_in_arrival_order(
    database: Database, programme: Programme, key_id: uuid.UUID, loop: asyncio.AbstractEventLoop
) -> None:
    member = make_member(database, programme)
    bought = purchase(ref(member), order_id="order-1", lines=[line("shoe", 2, "30.00")])
    returned = return_of(ref(member), "order-1", [{"sku": "shoe", "quantity": 1}])

    # The return queued after its purchase: both accepted, half the points taken back.
    results = run_group(database, loop, [(key_id, bought), (key_id, returned)])
    outcomes = [r for r in results if isinstance(r, EventOutcome)]
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert outcomes[0].totals == {"points": 60}
    taken = [e for e in outcomes[1].effects if e["kind"] == "reversal"]
    assert sum(int(e["amount"]) for e in taken) == 30

    # The other way round: the return arrives first and is refused (no such order yet).
    other = make_member(database, programme)
    early_return = return_of(ref(other), "order-2", [{"sku": "hat", "quantity": 1}])
    late_purchase = purchase(ref(other), order_id="order-2", lines=[line("hat", 1, "12.00")])
    results = run_group(database, loop, [(key_id, early_return), (key_id, late_purchase)])
    outcomes = [r for r in results if isinstance(r, EventOutcome)]
    assert [o.status for o in outcomes] == ["rejected", "accepted"]
    assert early_return["id"] not in stored(database, programme)


def test_a_resend_inside_the_group_is_a_duplicate_of_the_first(
    database: Database, programme: Programme, key_id: uuid.UUID, loop: asyncio.AbstractEventLoop
) -> None:
    member = make_member(database, programme)
    payload = purchase(ref(member), lines=[line("tea", 1, "4.00")])
    results = run_group(database, loop, [(key_id, payload), (key_id, dict(payload))])
    outcomes = [r for r in results if isinstance(r, EventOutcome)]
    assert [o.status for o in outcomes] == ["accepted", "duplicate"]
    assert outcomes[0].event_id == outcomes[1].event_id
    assert postings(database, programme) == 1


def test_a_key_revoked_before_the_group_commits_is_refused(
    database: Database, programme: Programme, key_id: uuid.UUID, loop: asyncio.AbstractEventLoop
) -> None:
    member = make_member(database, programme)
    with database.transaction() as session:
        other, _ = apikeys.create(session, programme=programme, name="old", scope=Scope.integration)
        apikeys.revoke(session, programme=programme, key_id=other.id)
    by_revoked = event("review", ref(member), {"stars": 4})
    by_live = event("review", ref(member), {"stars": 5})
    results = run_group(database, loop, [(other.id, by_revoked), (key_id, by_live)])
    assert isinstance(results[0], Unauthorized)
    assert isinstance(results[1], EventOutcome)
    assert results[1].status == "accepted"
    assert stored(database, programme) == {by_live["id"]}


def test_groups_of_two_programmes_commit_together_and_stay_apart(
    database: Database, programme: Programme, key_id: uuid.UUID, loop: asyncio.AbstractEventLoop
) -> None:
    second = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=second, raw=RULES, actor="test")
        other_key, _ = apikeys.create(session, programme=second, name="t", scope=Scope.integration)
    here, there = make_member(database, programme), make_member(database, second)
    mine = purchase(ref(here), lines=[line("x", 1, "3.00")])
    theirs = purchase(ref(there), lines=[line("x", 1, "9.00")])
    # A member of the other programme named with this programme's key is unknown here.
    crossing = purchase(ref(there), lines=[line("y", 1, "1.00")])
    results = run_group(
        database, loop, [(key_id, mine), (other_key.id, theirs), (key_id, crossing)]
    )
    statuses = [r.status if isinstance(r, EventOutcome) else r for r in results]
    assert statuses == ["accepted", "accepted", "rejected"]
    assert stored(database, programme) == {mine["id"]}
    second_live = Programme(id=second.id)
    assert stored(database, second_live) == {theirs["id"]}


def test_the_writer_thread_answers_concurrent_submissions(
    database: Database, programme: Programme, key_id: uuid.UUID
) -> None:
    """Through the real thread and queue: every submission gets its own outcome."""
    members = [make_member(database, programme) for _ in range(8)]
    committer = GroupCommit(database)

    async def send_all() -> list[EventOutcome]:
        payloads = [
            purchase(ref(m), lines=[line("z", 1, f"{i + 1}.00")]) for i, m in enumerate(members)
        ]
        return await asyncio.gather(
            *(committer.submit(key_id=key_id, event=EventIn.model_validate(p)) for p in payloads)
        )

    try:
        outcomes = asyncio.run(send_all())
    finally:
        committer.stop()
    assert [o.totals for o in outcomes] == [{"points": i + 1} for i in range(8)]
    assert committer.grouped == 8
    assert 1 <= committer.groups <= 8


def test_several_writers_answer_every_submission_and_stop_together(
    database: Database, programme: Programme, key_id: uuid.UUID
) -> None:
    """Writers on their own connections (``FIDELIA_INTAKE_WRITERS``): 24 concurrent
    purchases of six members each get their own outcome, every member earns exactly what
    their purchases earn, and ``stop`` ends every writer."""
    members = [make_member(database, programme) for _ in range(6)]
    committer = GroupCommit(database, writers=3)
    payloads = [
        purchase(ref(members[i % 6]), lines=[line("w", 1, f"{i + 1}.00")]) for i in range(24)
    ]

    async def send_all() -> list[EventOutcome]:
        return await asyncio.gather(
            *(committer.submit(key_id=key_id, event=EventIn.model_validate(p)) for p in payloads)
        )

    threads = []
    try:
        outcomes = asyncio.run(send_all())
        threads = list(committer._threads)
    finally:
        committer.stop()
    assert len(threads) == 3
    assert not any(t.is_alive() for t in threads)
    assert [o.totals for o in outcomes] == [{"points": i + 1} for i in range(24)]
    assert committer.grouped == 24
    with database.transaction(readonly=True) as session:
        for n, member in enumerate(members):
            balance = session.scalar(
                select(Account.available).where(Account.member_id == member.id)
            )
            assert balance == sum(i + 1 for i in range(24) if i % 6 == n)
        assert verify(session, programme_id=programme.id).ok
    assert GroupCommit(database).writers == 1
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(database, writers=0)


def test_the_writer_waits_for_the_rest_of_a_burst_only_after_a_larger_group(
    database: Database,
) -> None:
    """After a group of one, the writer takes what is queued and never waits; after a larger
    group it waits for the burst's next requests while they keep coming (``gap``), so the
    callers a commit answered together are committed together again."""
    committer = GroupCommit(database, gap=0.25, linger=2.0)

    def later(delay: float, item: str) -> None:
        threading.Timer(delay, committer._queue.put, [item]).start()

    later(0.1, "late")
    started = time.monotonic()
    assert committer._gather("first") == ["first"]  # previous group: one (a lone caller)
    assert time.monotonic() - started < 0.09
    assert committer._gather(committer._queue.get()) == ["late"]

    later(0.05, "b")
    later(0.15, "c")
    assert committer._gather("a", 3) == ["a", "b", "c"]  # gathered up to the previous size

    later(0.05, "b")
    started = time.monotonic()
    assert committer._gather("a", 3) == ["a", "b"]  # the burst stopped: one gap, then commit
    assert 0.25 <= time.monotonic() - started < 1.5


def test_an_error_of_the_whole_group_is_isolated_to_its_culprit(
    database: Database, programme: Programme, key_id: uuid.UUID, loop: asyncio.AbstractEventLoop
) -> None:
    """A group that fails as a whole is rerun request by request, so only the culprit fails.
    The culprit here: a programme whose live version points at a document that is not there,
    so its ingest raises instead of answering an outcome."""
    broken = make_programme(database)
    with database.transaction() as session:
        broken_key, _ = apikeys.create(session, programme=broken, name="t", scope=Scope.integration)
        session.execute(update(Programme).where(Programme.id == broken.id).values(live_version=99))
    member, stranger = make_member(database, programme), make_member(database, broken)
    fine = event("review", ref(member), {"stars": 3})
    doomed = event("review", ref(stranger), {"stars": 1})
    results = run_group(database, loop, [(key_id, fine), (broken_key.id, doomed)], groups=0)
    assert isinstance(results[0], EventOutcome)
    assert results[0].status == "accepted"
    assert isinstance(results[1], FideliaError)
    assert stored(database, programme) == {fine["id"]}
