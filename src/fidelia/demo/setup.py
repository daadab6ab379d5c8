"""`fidelia demo`: a living programme built the way a real one is, through the real paths.

The demo programme document is applied, a synthetic data set is generated, and every event is
replayed through the intake on its day, while the worker's work of each day runs as the days
pass (so balances, tiers, badges, challenges, vouchers and segments are the engine's work, not
rows written here, and dated through the year). Then some members redeem rewards — vouchers, a
donation, products, workshops, cashback — and use some vouchers at the till, and the jobs due
now run. Everything is deterministic for a seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from fidelia.analytics import aggregates
from fidelia.auth import service as apikeys
from fidelia.auth.schemas import Scope
from fidelia.db import Database
from fidelia.demo.generator import GeneratorConfig, generate
from fidelia.engagement import leaderboards
from fidelia.errors import Conflict
from fidelia.intake import service as intake
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Account, Member, Programme, Voucher, Wallet
from fidelia.offers import service as offers
from fidelia.offers.schemas import GiveIn
from fidelia.plans import service as plans
from fidelia.programmes import documents
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate
from fidelia.rewards import redemptions, till
from fidelia.rewards.schemas import BasketIn, RedeemVoucherIn
from fidelia.rules.demo import programme_document
from fidelia.scenarios.demo import ReplayClock, demo_sections
from fidelia.segments import live as segments
from fidelia.tiers.requalify import requalify
from fidelia.traits import rebuild as traits

SLUG = "earth-care"
CHUNK = 500
NIGHTS = 7  # the traits refresh and segments sweep of the replay: every NIGHTS days
Progress = Callable[[str, int, int], None]

# Which rewards members with enough points take, and how often (of those who can afford it).
APPETITES: tuple[tuple[str, int, float], ...] = (
    ("voucher-10-eur", 200, 0.45),
    ("donation-planete-verte", 100, 0.12),
    ("tote-bag", 300, 0.08),
    ("repair-workshop", 400, 0.20),
    ("sales-early-access", 50, 0.50),
    ("points-to-cashback", 500, 0.06),
)


@dataclass
class DemoReport:
    programme: Programme
    admin_key: str
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    redemptions: dict[str, int] = field(default_factory=dict)
    vouchers_used: int = 0
    jobs_run: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)


def build(
    database: Database,
    *,
    members: int = 600,
    months: int = 12,
    seed: int = 42,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> DemoReport:
    """Create the demo programme in an empty database and fill it with a year of activity."""
    now = now or utcnow()
    clock = time.perf_counter()
    with database.transaction() as session:
        programme = programmes.create(session, data=ProgrammeCreate(slug=SLUG, name="Earth Care"))
        document = {**programme_document(), **demo_sections()}  # + the four seed journeys
        documents.apply(session, programme=programme, raw=document, actor="demo")
        _, secret = apikeys.create(
            session, programme=programme, name="demo admin", scope=Scope.admin
        )
    report = DemoReport(programme=programme, admin_key=secret)
    dataset = generate(GeneratorConfig(members=members, months=months, seed=seed))
    report.seconds["generate"] = time.perf_counter() - clock
    _replay(database, report, dataset.events, now, progress)
    report.seconds["replay"] = time.perf_counter() - clock - report.seconds["generate"]
    _after_replay(database, report, random.Random(seed), now)
    report.jobs_run += jobs.run_due(database, now=now)
    _dashboard(database, report)
    report.seconds["total"] = time.perf_counter() - clock
    return report


def _after_replay(
    database: Database, report: DemoReport, rng: random.Random, now: datetime
) -> None:
    """The tier reviews that fell due during the history, then members redeem rewards; then
    the day's traits step (RFM scores and cells, lifecycle stages) and segments sweep, which
    the worker runs nightly, so the demo's segments are populated from the start."""
    with database.transaction() as session:
        reviewed = session.get(Programme, report.programme.id)
        assert reviewed is not None
        requalify(session, programme=reviewed, at=now)
    _redeem(database, report, rng, now)
    _opt_in(database, report, rng)
    with database.transaction() as session:
        scored = session.get(Programme, report.programme.id)
        assert scored is not None
        traits.refresh(session, programme=scored, now=now)
        segments.sweep(session, programme=scored, now=now)
    _offers_and_plans(database, report, rng, now)


def _dashboard(database: Database, report: DemoReport) -> None:
    """The dashboard reads the analytics aggregates as they stand: build them last (after the
    jobs due, whose postings they count), as the hourly job would, so the first view after
    `make demo` shows the history."""
    aggregates.fresh(database, programme=report.programme)


def _offers_and_plans(
    database: Database, report: DemoReport, rng: random.Random, now: datetime
) -> None:
    """The comeback offers go to the slipping segment, free delivery to the champions, and one
    member in eight subscribes to Earth Care+ (a third of them yearly, paid)."""
    with database.transaction() as session:
        programme = session.get_one(Programme, report.programme.id)
        for code, segment in (("comeback-double", "slipping"), ("comeback-voucher", "slipping"),
                              ("free-delivery-month", "champions")):  # fmt: skip
            offers.give(
                session,
                programme=programme,
                code=code,
                data=GiveIn(segment=segment),
                actor="demo",
                now=now,
            )
        ids = session.scalars(
            select(Member.id).where(Member.programme_id == programme.id).order_by(Member.id)
        ).all()
        for member_id in ids:
            if rng.random() < 1 / 8:
                yearly = rng.random() < 1 / 3
                plans.subscribe(
                    session,
                    programme=programme,
                    member_id=member_id,
                    actor="demo",
                    now=now,
                    plan_code="earth-plus-yearly" if yearly else "earth-plus-monthly",
                    paid=yearly,
                )


def _opt_in(database: Database, report: DemoReport, rng: random.Random) -> None:
    """Two members in three show on the leaderboards (opted in; some chose a name)."""
    with database.transaction() as session:
        programme = session.get_one(Programme, report.programme.id)
        ids = session.scalars(
            select(Member.id).where(Member.programme_id == programme.id).order_by(Member.id)
        ).all()
        for member_id in ids:
            if rng.random() < 2 / 3:
                name = f"EcoFan{rng.randint(10, 999)}" if rng.random() < 0.3 else None
                leaderboards.set_profile(
                    session,
                    programme=programme,
                    member_id=member_id,
                    opted_in=True,
                    display_name=name,
                )


def _replay(
    database: Database,
    report: DemoReport,
    events: list[dict[str, Any]],
    now: datetime,
    progress: Progress | None,
) -> None:
    """The year as a live programme lives it: each day's events reach the intake that day (its
    ``now`` is the day's last event), so what it stamps (postings, segment moves, traits,
    pending periods, received times) is dated through the year; at every local noon replayed
    the programme's day runs (:class:`_Day`), then its scenarios tick."""
    tz = ZoneInfo(report.programme.timezone)
    day = _Day(database, report)
    clock = ReplayClock(database, report.programme.id, report.programme.timezone, each_day=day)
    for chunk in _days(events, tz):
        received = datetime.fromisoformat(chunk[-1]["occurred_at"])
        clock.until(datetime.fromisoformat(chunk[0]["occurred_at"]))
        with database.transaction() as session:
            programme = session.get(Programme, report.programme.id)
            assert programme is not None
            outcomes = intake.ingest_payloads(
                session, programme=programme, payloads=chunk, now=received
            )
        clock.until(received)
        report.events += len(chunk)
        for outcome in outcomes:
            if outcome.status == "rejected":
                report.rejected += 1
                report.rejects[outcome.error or "?"] = (
                    report.rejects.get(outcome.error or "?", 0) + 1
                )
            else:
                report.accepted += 1
        if progress is not None:
            progress("replay", report.events, len(events))
    clock.finish(now)


def _days(events: list[dict[str, Any]], tz: ZoneInfo) -> Iterator[list[dict[str, Any]]]:
    """The events (in time order) of each local day, by chunks of at most ``CHUNK``."""
    chunk: list[dict[str, Any]] = []
    current = None
    for event in events:
        day = datetime.fromisoformat(event["occurred_at"]).astimezone(tz).date()
        if chunk and (day != current or len(chunk) == CHUNK):
            yield chunk
            chunk = []
        current = day
        chunk.append(event)
    if chunk:
        yield chunk


@dataclass
class _Day:
    """What the worker does as a replayed day passes, run at its noon: the jobs fallen due
    (pending points released, lots and vouchers expired, messages sent), the tier reviews due
    and, every ``NIGHTS`` days, the night's traits refresh and segments sweep."""

    database: Database
    report: DemoReport
    days: int = 0

    def __call__(self, at: datetime) -> None:
        pid = self.report.programme.id
        self.report.jobs_run += jobs.run_due(self.database, now=at, programme_id=pid)
        with self.database.transaction() as session:
            programme = session.get_one(Programme, pid)
            requalify(session, programme=programme, at=at)
            if self.days % NIGHTS == 0:
                traits.refresh(session, programme=programme, now=at)
                segments.sweep(session, programme=programme, now=at)
        self.days += 1


def _points_by_member(database: Database, programme: Programme) -> list[tuple[Any, int]]:
    with database.transaction(readonly=True) as session:
        rows = session.execute(
            select(Account.member_id, Account.available)
            .join(Wallet, Wallet.id == Account.wallet_id)
            .where(
                Wallet.programme_id == programme.id,
                Wallet.code == "points",
                Account.member_id.is_not(None),
            )
            .order_by(Account.member_id)
        )
        return [(member_id, int(available)) for member_id, available in rows]


def _redeem(database: Database, report: DemoReport, rng: random.Random, now: datetime) -> None:
    """Members who can afford a reward take it now and then; half the vouchers get used."""
    for member_id, balance in _points_by_member(database, report.programme):
        for reward, cost, appetite in APPETITES:
            if balance < cost or rng.random() >= appetite:
                continue
            with database.transaction() as session:
                programme = session.get(Programme, report.programme.id)
                assert programme is not None
                try:
                    redemptions.redeem(
                        session, programme=programme, member_id=member_id, reward=reward,
                        idempotency_key=f"demo-{reward}-{member_id}", now=now,
                    )  # fmt: skip
                except Conflict:  # not eligible (tier, first-N, stock): as at a real till
                    continue
            balance -= cost
            report.redemptions[reward] = report.redemptions.get(reward, 0) + 1
    _use_vouchers(database, report, rng, now)


def _use_vouchers(
    database: Database, report: DemoReport, rng: random.Random, now: datetime
) -> None:
    with database.transaction(readonly=True) as session:
        issued = session.execute(
            select(Voucher.code, Voucher.member_id)
            .where(Voucher.programme_id == report.programme.id, Voucher.status == "active")
            .order_by(Voucher.code)
        ).all()
    for code, member_id in issued:
        if rng.random() >= 0.5:
            continue
        basket = BasketIn(total=Decimal(rng.randrange(35, 120)))
        data = RedeemVoucherIn(
            code=code, member_id=member_id, basket=basket, order_id=f"demo-till-{code}"
        )
        with database.transaction() as session:
            programme = session.get(Programme, report.programme.id)
            assert programme is not None
            try:
                till.redeem(session, programme=programme, data=data, now=now)
            except Conflict:
                continue
        report.vouchers_used += 1


def build_cdnow(database: Database, *, path: str, progress: Progress | None = None) -> DemoReport:
    """The demo programme fed with the real CDNOW purchase log instead of generated data."""
    from pathlib import Path

    from fidelia.intake.imports import run_import

    clock = time.perf_counter()
    with database.transaction() as session:
        programme = programmes.create(
            session,
            data=ProgrammeCreate(
                slug=SLUG,
                name="Earth Care (CDNOW)",
                currency="USD",
                country="US",
                locale="en-US",
                timezone="America/New_York",
            ),
        )
        documents.apply(session, programme=programme, raw=programme_document(), actor="demo")
        _, secret = apikeys.create(
            session, programme=programme, name="demo admin", scope=Scope.admin
        )
    report = DemoReport(programme=programme, admin_key=secret)

    def step(lines: int, imported: Any) -> None:
        if progress is not None:
            progress("replay", imported.lines, 69_659)

    result = run_import(
        database,
        programme_id=programme.id,
        path=Path(path),
        kind="events",
        fmt="cdnow",
        enrol_unknown="active",
        progress=step,
    )
    report.events, report.accepted, report.rejected = result.lines, result.accepted, result.rejected
    report.seconds["replay"] = time.perf_counter() - clock
    # The points of 1997 expired long ago: the worker expires them, lot by lot, once serving.
    _after_replay(database, report, random.Random(0), utcnow())
    _dashboard(database, report)
    report.seconds["total"] = time.perf_counter() - clock
    return report


def existing(database: Database) -> Programme | None:
    """The demo programme, if this database has one already."""
    with database.transaction(readonly=True) as session:
        return session.scalar(select(Programme).where(Programme.slug == SLUG))


def new_admin_key(database: Database, programme: Programme) -> str:
    with database.transaction() as session:
        _, secret = apikeys.create(
            session, programme=programme, name="demo admin", scope=Scope.admin
        )
    return secret


def showcase_member(database: Database, programme: Programme) -> dict[str, Any] | None:
    """A member worth looking at in the examples: the one with the most points."""
    best = max(_points_by_member(database, programme), key=lambda row: row[1], default=None)
    if best is None:
        return None
    with database.transaction(readonly=True) as session:
        from fidelia.members import service as members

        member = members.get(session, programme=programme, member_id=best[0])
        details = members.details(session, member=member)
    identities = {i.kind: i.value for i in details["identities"]}
    return {"id": str(best[0]), "points": best[1], **identities}
