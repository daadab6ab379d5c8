"""Back-test: replay history through a baseline and a candidate programme, in memory.

Design note
-----------
The back-test is the engine plus :func:`~fidelia.rules.state.apply_event`, nothing more: the
same code that serves live events, so what it reports is what the programme would have done.
It replays the events in time order (a stable sort, so events of the same instant keep their
input order) through each programme, each with its own member states and programme counters;
the two replays share nothing, so ``parallel=True`` runs the baseline in a forked process.
It reads no clock and writes nothing; timing belongs to the caller.

The report gives, per programme, the amount awarded per rule and per wallet, the liability in
money (redeemable points x value per point + money wallets), the members awarded and the
distribution of points per member; and across both, the members whose points differ and the
biggest winners and losers (candidate minus baseline).

:func:`load_cdnow` turns the CDNOW purchase log into purchase events.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fidelia.events import cdnow
from fidelia.rules.compiler import CompiledProgramme
from fidelia.rules.engine import evaluate
from fidelia.rules.outcome import Amount
from fidelia.rules.state import (
    EngineEvent,
    MemberState,
    ProgrammeCounters,
    apply_event,
    record_counters,
)

_EMPTY_STATE = MemberState()
_PRICE_STEP, _ZERO = Decimal("0.0001"), Decimal(0)


@dataclass(slots=True)
class RuleFigures:
    """What one rule awarded over the replay."""

    wallet: str
    awards: int = 0
    amount: Amount = 0


@dataclass(slots=True)
class ProgrammeReport:
    """One programme's figures over the replay."""

    events: int = 0
    per_rule: dict[str, RuleFigures] = field(default_factory=dict)
    per_wallet: dict[str, Amount] = field(default_factory=dict)
    points_per_member: dict[str, int] = field(default_factory=dict)
    liability: Decimal = Decimal(0)
    redeemable_points: int = 0

    @property
    def members_awarded(self) -> int:
        """Members who received at least one redeemable point."""
        return sum(1 for v in self.points_per_member.values() if v > 0)

    def distribution(self, members: Iterable[str]) -> dict[str, int]:
        """Percentiles (nearest rank) of redeemable points per member, zeros included."""
        values = sorted(self.points_per_member.get(m, 0) for m in members)
        return {
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
            "max": values[-1] if values else 0,
        }

    def as_dict(self, members: Iterable[str]) -> dict[str, Any]:
        """JSON shape of one side of the report."""
        return {
            "events": self.events,
            "per_rule": {
                rule: {"wallet": f.wallet, "awards": f.awards, "amount": _json(f.amount)}
                for rule, f in sorted(self.per_rule.items())
            },
            "per_wallet": {w: _json(a) for w, a in sorted(self.per_wallet.items())},
            "redeemable_points": self.redeemable_points,
            "liability": str(self.liability),
            "members_awarded": self.members_awarded,
            "points_per_member": self.distribution(members),
        }


@dataclass(slots=True)
class BacktestReport:
    """Baseline and candidate side by side, with the members the change moves most."""

    baseline: ProgrammeReport
    candidate: ProgrammeReport
    members: list[str]
    winners: list[tuple[str, int, int]]  # member, baseline points, candidate points
    losers: list[tuple[str, int, int]]
    members_affected: int

    def as_dict(self) -> dict[str, Any]:
        """JSON shape of the whole report."""

        def rows(items: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
            keys = ("member", "baseline", "candidate")
            return [{**dict(zip(keys, r, strict=True)), "delta": r[2] - r[1]} for r in items]

        return {
            "members": len(self.members),
            "members_affected": self.members_affected,
            "baseline": self.baseline.as_dict(self.members),
            "candidate": self.candidate.as_dict(self.members),
            "winners": rows(self.winners),
            "losers": rows(self.losers),
        }


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[int(rank) - 1]


def _json(value: Amount) -> int | str:
    return str(value) if isinstance(value, Decimal) else value


class _Replay:
    """One programme's in-memory world: member states and programme counters."""

    def __init__(self, programme: CompiledProgramme) -> None:
        self.programme = programme
        self.states: dict[str, MemberState] = {}
        self.counters = ProgrammeCounters()
        self.events = 0

    def feed(self, member: str, event: EngineEvent) -> None:
        """Evaluate one event for one member, then keep the counters and the new state."""
        state = self.states.get(member, _EMPTY_STATE)
        outcome = evaluate(event, state, self.programme, self.counters, event.occurred_at)
        if outcome.effects:
            record_counters(self.counters, outcome, state)
        self.states[member] = apply_event(state, event, outcome, self.programme)
        self.events += 1

    def report(self, value_per_point: Decimal) -> ProgrammeReport:
        """The figures, read from the counters and the final member states."""
        wallets = self.programme.wallets
        redeemable = [n for n, w in wallets.items() if w.unit == "points" and w.redeemable]
        wallet_of = {r.id: r.wallet for rs in self.programme.by_type.values() for r in rs.base}
        wallet_of.update(
            {r.id: r.wallet for rs in self.programme.by_type.values() for r in rs.boosters}
        )
        report = ProgrammeReport(events=self.events)
        for rule_id, amount in self.counters.issued.items():
            wallet = wallet_of[rule_id] or ""
            report.per_rule[rule_id] = RuleFigures(wallet, self.counters.awards[rule_id], amount)
            report.per_wallet[wallet] = report.per_wallet.get(wallet, 0) + amount
        for member, state in self.states.items():
            points = sum(int(state.balances.get(w, 0)) for w in redeemable)
            if points:
                report.points_per_member[member] = points
        report.redeemable_points = sum(int(report.per_wallet.get(w, 0)) for w in redeemable)
        money = [Decimal(a) for w, a in report.per_wallet.items() if wallets[w].unit == "money"]
        report.liability = report.redeemable_points * value_per_point + sum(money, Decimal(0))
        return report


def replay(
    events: Iterable[tuple[str, EngineEvent]],
    programme: CompiledProgramme,
    *,
    value_per_point: Decimal = Decimal("0.01"),
) -> ProgrammeReport:
    """Replay ``(member_key, event)`` pairs, in the order given, through one programme."""
    world = _Replay(programme)
    feed = world.feed
    for member, event in events:
        feed(member, event)
    return world.report(value_per_point)


def _replay_to(
    pipe: Connection, events: list[tuple[str, EngineEvent]], prog: CompiledProgramme, vpp: Decimal
) -> None:
    pipe.send(replay(events, prog, value_per_point=vpp))
    pipe.close()


def _both(
    ordered: list[tuple[str, EngineEvent]],
    baseline: CompiledProgramme,
    candidate: CompiledProgramme,
    vpp: Decimal,
    parallel: bool,
) -> tuple[ProgrammeReport, ProgrammeReport]:
    if not parallel or "fork" not in multiprocessing.get_all_start_methods():
        return replay(ordered, baseline, value_per_point=vpp), replay(
            ordered, candidate, value_per_point=vpp
        )
    # The baseline replays in a forked child, which inherits the events without copying them.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_replay_to, args=(send, ordered, baseline, vpp), daemon=True)
    child.start()
    send.close()
    right = replay(ordered, candidate, value_per_point=vpp)
    left: ProgrammeReport = receive.recv()
    child.join()
    return left, right


def backtest(
    events: Iterable[tuple[str, EngineEvent]],
    baseline: CompiledProgramme,
    candidate: CompiledProgramme,
    *,
    value_per_point: Decimal = Decimal("0.01"),
    presorted: bool = False,
    top: int = 10,
    parallel: bool = False,
) -> BacktestReport:
    """Replay ``(member_key, event)`` pairs through both programmes and compare them.

    Events are replayed in ``occurred_at`` order (stable sort) unless ``presorted``.
    ``value_per_point`` is the money value of one redeemable point, for the liability.
    ``parallel`` replays the baseline in a forked process (POSIX only; the two programmes
    share nothing, so the result is the same, in about half the time on two free cores).
    """
    ordered = list(events) if presorted else sorted(events, key=lambda pair: pair[1].occurred_at)
    left, right = _both(ordered, baseline, candidate, value_per_point, parallel)
    members = list(dict.fromkeys(member for member, _ in ordered))
    deltas = [
        (m, left.points_per_member.get(m, 0), right.points_per_member.get(m, 0)) for m in members
    ]
    moved = [d for d in deltas if d[1] != d[2]]
    by_gain = sorted(moved, key=lambda d: (d[1] - d[2], d[0]))
    winners = [d for d in by_gain[:top] if d[2] > d[1]]
    losers = [d for d in sorted(moved, key=lambda d: (d[2] - d[1], d[0]))[:top] if d[2] < d[1]]
    return BacktestReport(left, right, members, winners, losers, len(moved))


def load_cdnow(
    path: str | Path, *, tz: ZoneInfo | None = None
) -> Iterator[tuple[str, EngineEvent]]:
    """Purchase events from the CDNOW log (see :mod:`fidelia.events.cdnow`), keyed by customer
    id; channel ``web``; ``tz`` defaults to Europe/Paris. Unreadable lines are skipped."""
    for order in cdnow.read(path, tz or ZoneInfo("Europe/Paris")):
        if isinstance(order, cdnow.Order):
            key = order.purchase.order_id
            yield (
                order.customer,
                EngineEvent("purchase", order.occurred_at, "web", None, {}, order.purchase, key),
            )
