"""Set-based award postings on the intake path (issue 18): the engine run plans each event's
awards and posts the batch's together, flushing them first whenever something reads the
ledger (a return, a challenge's points). Each test runs the same events on two programmes:
one batch with the set-based path, and the same batch with the awards posted one by one
through ``ledger.award`` as the engine did before; journal, lots, balances, jobs, ``verify``
and the events' outcomes must be the same."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.errors import Conflict
from fidelia.intake import effects as rules
from fidelia.intake import service as intake
from fidelia.ledger import operations as ledger
from fidelia.ledger.verify import verify
from fidelia.models import LedgerTransaction, Programme
from fidelia.programmes import documents
from fidelia.rules.demo import programme_document
from fidelia.rules.outcome import Award
from fidelia.rules.state import EngineEvent
from tests.fixtures.events import line, purchase, return_of
from tests.fixtures.factories import make_member, make_programme
from tests.ledger.conftest import balance
from tests.ledger.test_award_many import into_debt, snapshot

JULY = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)  # summer challenge on: 5 purchases and 300 €


def _one_by_one(
    self: rules.EngineRun,
    award: Award,
    event: EngineEvent,
    event_id: uuid.UUID,
    member_id: uuid.UUID,
) -> None:
    """``EngineRun._post`` as it was: one ``ledger.award`` per award, at once."""
    ledger.award(
        self.session,
        programme=self.programme,
        member_id=member_id,
        wallet=award.wallet,
        amount=award.amount,
        idempotency_key=f"event:{event_id}:{award.rule_id}:{award.wallet}",
        occurred_at=event.occurred_at,
        source_type="event",
        source_id=str(event_id),
        rule_id=award.rule_id,
        rule_version=award.rule_version,
        expires_at=award.expires_at if award.expires_at is not None else ledger.UNSET,
        available_at=award.available_at,
        fresh_key=True,
        now=self.now,
    )


@pytest.fixture
def single_path(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A context in which the engine posts each award alone (the reference)."""

    class Switch:
        def __enter__(self) -> None:
            monkeypatch.setattr(rules.EngineRun, "_post", _one_by_one)

        def __exit__(self, *exc: object) -> None:
            monkeypatch.undo()

    return Switch()


def demo(database: Database, n_members: int) -> tuple[Programme, list[uuid.UUID]]:
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=programme_document(), actor="test")
        live = session.get(Programme, programme.id)
        assert live is not None
    return live, [make_member(database, live).id for _ in range(n_members)]


def basket(n: int, member: int) -> list[dict[str, Any]]:
    """Two lines, the second in a category new to the member now and then (a bonus)."""
    return [
        line("tee", 1 + n % 2, "39.90", category="apparel"),
        line(f"book-{n}", 1, "24.50", category=f"books-{n % 3}", discount="2.00"),
    ]


def ingest(
    database: Database, programme: Programme, payloads: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    with database.transaction() as session:
        outcomes = intake.ingest_payloads(session, programme=programme, payloads=payloads, now=now)
    assert [o.status for o in outcomes] == ["accepted"] * len(payloads), [
        (o.error, o.detail) for o in outcomes if o.status != "accepted"
    ]
    return [o.model_dump(mode="json") for o in outcomes]


VARYING = {"event_id", "member_id", "voucher_id", "code", "transaction_id"}


def comparable(value: Any) -> Any:
    """An outcome without the ids and codes that differ between two programmes."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def twice(
    database: Database,
    single_path: Any,
    n_members: int,
    build: Any,
    setup: Any = None,
) -> tuple[Any, ...]:
    """Run ``build(members) -> list of batches`` on two demo programmes: set-based, then one
    by one; returns (snapshot, outcomes, programme, members) of each run."""
    runs = []
    for set_based in (True, False):
        programme, members = demo(database, n_members)
        if setup is not None:
            setup(programme, members)
        outcomes = []
        for at, payloads in build(members):
            if set_based:
                outcomes += ingest(database, programme, payloads, at)
            else:
                with single_path:
                    outcomes += ingest(database, programme, payloads, at)
        names = {o["event_id"]: o["id"] for o in outcomes}
        names.update({str(m): f"member-{i}" for i, m in enumerate(members)})
        with database.transaction(readonly=True) as session:
            txns = session.scalars(
                select(LedgerTransaction.id)
                .where(LedgerTransaction.programme_id == programme.id)
                .order_by(LedgerTransaction.id)
            )
            names.update({str(t): f"transaction-{i}" for i, t in enumerate(txns)})
        runs.append(
            (renamed(snapshot(database, programme, members), names), outcomes, programme, members)
        )
    return tuple(runs)


def renamed(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every id of an event, member or transaction (in keys, sources and
    details) replaced by a name that does not depend on the programme."""
    if isinstance(value, str):
        for old, new in names.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: renamed(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(renamed(v, names) for v in value)
    return value


def assert_same(many: Any, single: Any) -> None:
    assert many[0]["verify"][0], "ledger verify found problems"
    for part in single[0]:
        assert many[0][part] == single[0][part], part
    assert comparable(many[1]) == comparable(single[1])


def test_a_batch_of_purchases_posts_what_the_awards_one_by_one_post(
    database: Database, single_path: Any
) -> None:
    """Five members, six purchases each, interleaved in one batch: points, status points,
    web cashback, first-in-category bonuses, the first-purchase bonus, the five-purchase
    milestone (points and a voucher), a tier upgrade halfway and the summer challenge's
    500 points (posted through the single path in the middle of the batch)."""

    def build(members: list[uuid.UUID]) -> list[tuple[datetime, list[dict[str, Any]]]]:
        payloads = [
            purchase(
                {"id": str(members[m])},
                order_id=f"o-{n}-{m}",
                lines=basket(n, m),
                id=f"p-{n}-{m}",
                occurred_at=JULY + timedelta(days=n, hours=m),
                channel="web" if (n + m) % 2 else "store",
            )
            for n in range(6)
            for m in range(len(members))
        ]
        return [(JULY + timedelta(days=7), payloads)]

    many, single = twice(database, single_path, 5, build)
    assert_same(many, single)
    kinds = {e["kind"] for o in many[1] for e in o["effects"]}
    assert {"award", "tier", "voucher_issued", "challenge_completed", "badge_earned"} <= kinds
    earned = [e["rule"]["id"] for o in many[1] for e in o["effects"] if e["kind"] == "award"]
    assert {"base-earn", "status-points", "web-cashback", "first-in-category"} <= set(earned)
    assert len(earned) == 100
    challenge = [t for t in many[0]["transactions"] if t[4] == "challenge"]
    assert len(challenge) == 5, "every member completed the summer challenge inside the batch"


def test_a_member_in_debt_repays_it_first(database: Database, single_path: Any) -> None:
    def setup(programme: Programme, members: list[uuid.UUID]) -> None:
        with database.transaction() as session:
            into_debt(session, programme, members[0], 120, "debtor")

    def build(members: list[uuid.UUID]) -> list[tuple[datetime, list[dict[str, Any]]]]:
        payloads = [
            purchase(
                {"id": str(members[m])},
                order_id=f"o-{n}-{m}",
                lines=[line("tee", 1, "39.90", category="apparel")],
                id=f"p-{n}-{m}",
                occurred_at=JULY + timedelta(hours=n * 2 + m),
            )
            for n in range(2)
            for m in range(2)
        ]
        return [(JULY + timedelta(days=1), payloads)]

    many, single = twice(database, single_path, 2, build, setup)
    assert_same(many, single)
    _, outcomes, programme, members = many
    earned = sum(
        int(e["amount"])
        for o in outcomes
        if o["member_id"] == str(members[0])
        for e in o["effects"]
        if e["kind"] == "award" and e["wallet"] == "points"
    )
    assert earned > 120
    assert balance(database, programme, members[0]) == (earned - 120, 0)
    # the debtor's new points lots, in order: the first ones gave their value to the debt
    lots = [lot for lot in many[0]["lots"] if lot[0] == ("points", "member", 0) and lot[7] > JULY]
    owed, expected = 120, []
    for lot in lots:
        expected.append(min(owed, lot[2]))
        owed -= expected[-1]
    assert [lot[2] - lot[3] for lot in lots] == expected  # amount - remaining
    assert owed == 0


def test_a_purchase_and_its_returns_in_one_batch_reverse_exactly(
    database: Database, single_path: Any
) -> None:
    """A purchase, a partial return and the return of the rest, all in one batch: every
    award is taken back exactly, from the awards posted earlier in the same batch."""

    def build(members: list[uuid.UUID]) -> list[tuple[datetime, list[dict[str, Any]]]]:
        who = {"id": str(members[0])}
        other = {"id": str(members[1])}
        lines = [line("tee", 2, "39.90", category="apparel"), line("bag", 1, "55.00")]
        payloads = [
            purchase(other, order_id="o-other", lines=lines, id="p-other", occurred_at=JULY),
            purchase(who, order_id="o-1", lines=lines, id="p-1", occurred_at=JULY, channel="web"),
            return_of(
                who,
                "o-1",
                [{"sku": "tee", "quantity": 1}],
                id="r-1",
                occurred_at=JULY + timedelta(hours=1),
            ),
            return_of(
                who,
                "o-1",
                [{"sku": "tee", "quantity": 1}, {"sku": "bag", "quantity": 1}],
                id="r-2",
                occurred_at=JULY + timedelta(hours=2),
            ),
        ]
        return [(JULY + timedelta(hours=3), payloads)]

    many, single = twice(database, single_path, 2, build)
    assert_same(many, single)
    _, outcomes, programme, members = many
    awards = {
        (e["rule"]["id"], e["wallet"]): e["amount"]
        for e in outcomes[1]["effects"]
        if e["kind"] == "award"
    }
    taken: dict[tuple[str, str], int] = {}
    for outcome in outcomes[2:]:
        for e in outcome["effects"]:
            if e["kind"] == "reversal":
                key = (e["rule"]["id"], e["wallet"])
                taken[key] = taken.get(key, 0) + float(e["amount"])
    assert {k: float(v) for k, v in awards.items()} == taken
    for wallet in ("points", "status", "cashback"):
        assert balance(database, programme, members[0], wallet) == (0, 0), wallet
    assert balance(database, programme, members[1], "points")[0] > 0


def test_an_event_refused_after_its_awards_were_planned_posts_none_of_them(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error after the engine planned an event's awards (here a tier check made to fail)
    refuses the event: its awards are dropped, the batch's other events are posted."""
    programme, members = demo(database, 2)
    follow = rules.tiers.after_event

    def failing(session: Any, **kwargs: Any) -> Any:
        if kwargs["spend"] == Decimal("77.77"):
            raise Conflict("the tier check failed")
        return follow(session, **kwargs)

    monkeypatch.setattr(rules.tiers, "after_event", failing)
    payloads = [
        purchase({"id": str(members[0])}, lines=[line("a", 1, "20.00")], occurred_at=JULY),
        purchase({"id": str(members[1])}, lines=[line("b", 1, "77.77")], occurred_at=JULY),
        purchase({"id": str(members[0])}, lines=[line("c", 1, "30.00")], occurred_at=JULY),
    ]
    with database.transaction() as session:
        outcomes = intake.ingest_payloads(
            session, programme=programme, payloads=payloads, now=JULY + timedelta(hours=1)
        )
    assert [o.status for o in outcomes] == ["accepted", "rejected", "accepted"]
    assert outcomes[1].error == "conflict"
    assert balance(database, programme, members[1]) == (0, 0)
    assert balance(database, programme, members[1], "status") == (0, 0)
    awards = [e for o in (outcomes[0], outcomes[2]) for e in o.effects if e["kind"] == "award"]
    points = sum(int(e["amount"]) for e in awards if e["wallet"] == "points")
    assert balance(database, programme, members[0]) == (points, 0)
    with database.transaction(readonly=True) as session:
        posted = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.programme_id == programme.id)
        )
        assert verify(session, programme_id=programme.id).ok
    assert posted == len(awards)
