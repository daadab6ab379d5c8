"""Rule vouchers on the intake path (issue 18): a batch's vouchers are issued together by
``rewards.issue_many`` when the batch writes, each event's outcome names its own voucher (or
why it has none), a resend replays the same codes, and the statements a batch runs do not grow
with the number of vouchers it issues."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select

from fidelia.db import Database
from fidelia.intake import service as intake
from fidelia.models import Programme, Voucher, VoucherPool
from fidelia.programmes import documents
from fidelia.rewards import pools
from fidelia.rules.demo import programme_document
from tests.fixtures.events import enrolment
from tests.fixtures.factories import make_programme

NOW = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)
# statements on the voucher tables (not the offers', whose first-N counters are per event)
VOUCHER_SQL = re.compile(r"\b(into|from|update|join)\s+(vouchers|voucher_pools)\b", re.IGNORECASE)


def demo(database: Database, *, stocked_only: int | None = None) -> Programme:
    """The demo programme (a welcome voucher on enrolment); with ``stocked_only``, the welcome
    pool has no pattern and that many imported codes."""
    document = programme_document()
    if stocked_only is not None:
        (welcome,) = [p for p in document["voucher_pools"] if p["code"] == "welcome"]
        welcome["pattern"] = None
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=document, actor="test")
        if stocked_only:
            raw = [f"W-{uuid.uuid4().hex[:8].upper()}" for _ in range(stocked_only)]
            pools.import_codes(session, programme=programme, code="welcome", raw=raw, bearer=False)
        live = session.get(Programme, programme.id)
        assert live is not None
    return live


def enrolments(n: int) -> list[dict[str, Any]]:
    return [
        enrolment({"email": f"v{uuid.uuid4().hex[:10]}@example.org"}, occurred_at=NOW)
        for _ in range(n)
    ]


def ingest(database: Database, programme: Programme, payloads: list[dict[str, Any]]) -> list[Any]:
    with database.transaction() as session:
        return intake.ingest_payloads(session, programme=programme, payloads=payloads, now=NOW)


def welcome_of(outcome: Any) -> dict[str, Any]:
    (found,) = [
        e for e in outcome.effects if e["kind"] == "voucher_issued" and e["reward"] == "welcome"
    ]
    return found


def test_each_enrolment_of_a_batch_gets_its_own_voucher_and_a_resend_the_same(
    database: Database,
) -> None:
    programme = demo(database)
    payloads = enrolments(5)
    outcomes = ingest(database, programme, payloads)
    assert [o.status for o in outcomes] == ["accepted"] * 5
    issued = [welcome_of(o) for o in outcomes]
    assert [e["status"] for e in issued] == ["issued"] * 5
    assert len({e["code"] for e in issued}) == 5
    with database.transaction(readonly=True) as s:
        stored = {
            v.code: v
            for v in s.scalars(select(Voucher).where(Voucher.programme_id == programme.id))
        }
        for outcome, effect in zip(outcomes, issued, strict=True):
            voucher = stored[effect["code"]]
            assert str(voucher.id) == effect["voucher_id"]
            assert voucher.member_id == outcome.member_id
            assert (voucher.source, voucher.source_id) == ("rule", str(outcome.event_id))
    assert len(stored) == 5

    again = ingest(database, programme, payloads)
    assert [o.status for o in again] == ["duplicate"] * 5
    assert [welcome_of(o)["code"] for o in again] == [e["code"] for e in issued]
    with database.transaction(readonly=True) as s:
        count = len(list(s.scalars(select(Voucher.id).where(Voucher.programme_id == programme.id))))
    assert count == 5


def test_a_pool_that_runs_out_fails_the_voucher_not_the_event(database: Database) -> None:
    programme = demo(database, stocked_only=2)
    payloads = enrolments(3)
    outcomes = ingest(database, programme, payloads)
    assert [o.status for o in outcomes] == ["accepted"] * 3
    issued = [welcome_of(o) for o in outcomes]
    assert [e["status"] for e in issued] == ["issued", "issued", "failed"]
    assert issued[2]["reason"] == "pool_exhausted", issued[2]
    with database.transaction(readonly=True) as s:
        pool = s.scalars(
            select(VoucherPool).where(
                VoucherPool.programme_id == programme.id, VoucherPool.code == "welcome"
            )
        ).one()
        held = set(s.scalars(select(Voucher.member_id).where(Voucher.pool_id == pool.id)))
    assert held == {outcomes[0].member_id, outcomes[1].member_id}
    # the stored outcomes (what a resend answers) say the same, and issue nothing more
    replay = [welcome_of(o) for o in ingest(database, programme, payloads)]
    assert replay == issued


def test_statements_do_not_grow_with_the_vouchers_of_a_batch(database: Database) -> None:
    def statements(n: int) -> int:
        programme = demo(database)
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        engine = database.engine
        sa_event.listen(engine, "before_cursor_execute", count)
        try:
            outcomes = ingest(database, programme, enrolments(n))
        finally:
            sa_event.remove(engine, "before_cursor_execute", count)
        assert [welcome_of(o)["status"] for o in outcomes] == ["issued"] * n
        return sum(1 for sql in seen if VOUCHER_SQL.search(sql))

    assert statements(12) == statements(4)
