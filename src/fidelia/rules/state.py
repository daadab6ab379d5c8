"""What the engine reads besides the programme: the event, the member state, programme counters.

Design note
-----------
The engine never scans a member's history. It reads a :class:`MemberState` that the service
layer keeps next to the member (one JSON column, :meth:`MemberState.to_json`) and updates with
:func:`apply_event` in the same transaction as each event; the back-test calls the same
function while it replays, so both see identical state.

- Purchases are kept as lifetime totals plus daily buckets (local dates in the programme time
  zone) for the last :data:`RETENTION_DAYS` days: enough for "last 30 days", "this calendar
  month/year" and "since a date" within that horizon.
- Rule usage (for limits, first-N and once-only milestones) is kept per rule and per period key
  (``day:2024-03-05``, ``week:2024-W10``, ``month:2024-03``, ``year:2024``, ``lifetime``); only
  the newest key of each period kind is kept. An event arriving late for an older period is
  counted in lifetime usage only.
- The state is a value: :func:`apply_event` returns a new one and shares what did not change.
- Programme-wide counters (budget used, members awarded per rule) are not per member; they come
  in a :class:`ProgrammeCounters` that the caller maintains (:func:`record_counters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fidelia.events.schemas import Purchase
from fidelia.kit.conditions import local_time
from fidelia.rules.outcome import Amount, Award, Evaluation

if TYPE_CHECKING:
    from fidelia.rules.compiler import CompiledProgramme

RETENTION_DAYS = 400
STATE_VERSION = 1
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One event as the engine sees it; ``occurred_at`` is aware (UTC)."""

    type: str
    occurred_at: datetime
    channel: str | None = None
    store: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    purchase: Purchase | None = None
    id: str | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")

    @classmethod
    def from_intake(
        cls,
        *,
        type: str,
        occurred_at: datetime,
        channel: str | None = None,
        store: str | None = None,
        properties: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> EngineEvent:
        """Build from intake fields; a ``purchase`` gets its typed :class:`Purchase` parsed."""
        props = dict(properties or {})
        purchase = Purchase.model_validate(props) if type == "purchase" else None
        return cls(type, occurred_at, channel, store, props, purchase, id)


def basket_amount(purchase: Purchase) -> Decimal:
    """What the lines cost after their discounts, shipping excluded."""
    lines = purchase.lines
    if len(lines) == 1:
        return lines[0].amount
    return sum((line.amount for line in lines), _ZERO)


@lru_cache(maxsize=4096)
def period_keys(day: date) -> tuple[tuple[str, str], ...]:
    """The usage keys of a local date, one per period kind (cached: dates repeat)."""
    iso = day.isocalendar()
    return (
        ("day", f"day:{day.isoformat()}"),
        ("week", f"week:{iso.year}-W{iso.week:02d}"),
        ("month", f"month:{day.year}-{day.month:02d}"),
        ("year", f"year:{day.year}"),
        ("lifetime", "lifetime"),
    )


@dataclass(slots=True)
class MemberState:
    """A member's standing, as the engine needs it. JSON shape: see :meth:`to_json`.

    Treat it as a value: :func:`apply_event` returns a new one and never changes its input.
    (It is not ``frozen`` only because a frozen dataclass costs five times as much to create,
    and one is created per event.)
    """

    tier: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    balances: Mapping[str, Amount] = field(default_factory=dict)
    purchases: int = 0
    spend: Decimal = _ZERO
    days: Mapping[str, tuple[int, Decimal]] = field(default_factory=dict)
    categories: frozenset[str] = frozenset()
    event_counts: Mapping[str, int] = field(default_factory=dict)
    usage: Mapping[str, Mapping[str, tuple[int, Amount]]] = field(default_factory=dict)
    last_event_at: datetime | None = None
    # The member's segments before the batch (``member.segments``); loaded by the intake when
    # the programme's rules read them, never stored with the state.
    segments: frozenset[str] = frozenset()
    # The member's traits as conditions read them (``traits.*``), loaded by the intake when
    # rules read them (a plain mapping built above the engine), never stored with the state.
    traits: Mapping[str, Any] = field(default_factory=dict)

    def purchases_since(self, since: date | None) -> tuple[int, Decimal]:
        """(count, spend) of purchases on or after local date ``since`` (None: lifetime)."""
        if since is None:
            return self.purchases, self.spend
        key = since.isoformat()
        count, spend = 0, _ZERO
        for day, (n, amount) in self.days.items():
            if day >= key:
                count += n
                spend += amount
        return count, spend

    def used(self, rule_id: str, key: str = "lifetime") -> tuple[int, Amount]:
        """(awards, amount) a rule gave this member in the period ``key``."""
        return self.usage.get(rule_id, {}).get(key, (0, 0))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (Decimals as strings, ints as numbers) for the member's row."""
        return {
            "v": STATE_VERSION,
            "tier": self.tier,
            "attributes": dict(self.attributes),
            "balances": {k: _dump(v) for k, v in self.balances.items()},
            "purchases": self.purchases,
            "spend": str(self.spend),
            "days": {k: [n, str(s)] for k, (n, s) in self.days.items()},
            "categories": sorted(self.categories),
            "event_counts": dict(self.event_counts),
            "usage": {
                rule: {k: [n, _dump(a)] for k, (n, a) in periods.items()}
                for rule, periods in self.usage.items()
            },
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MemberState:
        """Inverse of :meth:`to_json`."""
        last = data.get("last_event_at")
        return cls(
            tier=data.get("tier"),
            attributes=dict(data.get("attributes", {})),
            balances={k: _load(v) for k, v in data.get("balances", {}).items()},
            purchases=int(data.get("purchases", 0)),
            spend=Decimal(data.get("spend", "0")),
            days={k: (int(n), Decimal(s)) for k, (n, s) in data.get("days", {}).items()},
            categories=frozenset(data.get("categories", ())),
            event_counts={k: int(v) for k, v in data.get("event_counts", {}).items()},
            usage={
                rule: {k: (int(n), _load(a)) for k, (n, a) in periods.items()}
                for rule, periods in data.get("usage", {}).items()
            },
            last_event_at=datetime.fromisoformat(last) if last else None,
        )


def _dump(value: Amount) -> int | str:
    return str(value) if isinstance(value, Decimal) else value


def _load(value: int | str) -> Amount:
    return Decimal(value) if isinstance(value, str) else int(value)


def apply_event(
    state: MemberState, event: EngineEvent, evaluation: Evaluation, programme: CompiledProgramme
) -> MemberState:
    """The member state after ``event`` and the effects the engine decided for it.

    Pure: returns a new state. Usage is kept per rule for its lifetime and for the periods
    its limits name. Wallet balances move by the awards only; redemptions, expiry and tier
    changes belong to other domains, which set ``balances``/``tier`` with ``replace``.
    """
    local_day = local_time(event.occurred_at, programme.tz).date()
    counts = dict(state.event_counts)
    counts[event.type] = counts.get(event.type, 0) + 1
    last = state.last_event_at
    purchases, spend, days, categories = state.purchases, state.spend, state.days, state.categories
    if event.purchase is not None:
        purchases, spend, days, categories = _after_purchase(state, event.purchase, local_day)
    balances, usage = state.balances, state.usage
    if evaluation.effects:
        balances, usage = _after_effects(state, evaluation, local_day, programme)
    return MemberState(
        state.tier,
        state.attributes,
        balances,
        purchases,
        spend,
        days,
        categories,
        counts,
        usage,
        event.occurred_at if last is None or event.occurred_at > last else last,
        state.segments,
        state.traits,
    )


@lru_cache(maxsize=4096)
def _day_keys(day: date) -> tuple[str, str]:
    """A local date's bucket key and the oldest key kept with it (cached: dates repeat)."""
    return day.isoformat(), (day - timedelta(days=RETENTION_DAYS)).isoformat()


def _after_purchase(
    state: MemberState, purchase: Purchase, day: date
) -> tuple[int, Decimal, dict[str, tuple[int, Decimal]], frozenset[str]]:
    amount = basket_amount(purchase)
    key, horizon = _day_keys(day)
    days = dict(state.days)
    n, spend = days.get(key, (0, _ZERO))
    days[key] = (n + 1, spend + amount)
    if n == 0 and len(days) > 1 and next(iter(days)) <= horizon:  # keys come in time order
        days = {k: v for k, v in days.items() if k > horizon}
    categories = state.categories
    new = [c for line in purchase.lines if (c := line.category) and c not in categories]
    if new:
        categories = categories.union(new)
    return state.purchases + 1, state.spend + amount, days, categories


def _after_effects(
    state: MemberState, evaluation: Evaluation, day: date, programme: CompiledProgramme
) -> tuple[dict[str, Amount], dict[str, Mapping[str, tuple[int, Amount]]]]:
    balances = dict(state.balances)
    fired: dict[str, Amount] = {}
    for effect in evaluation.effects:
        if type(effect) is Award:
            wallet, gained = effect.wallet, effect.amount
            balances[wallet] = balances.get(wallet, 0) + gained
            fired[effect.rule_id] = fired.get(effect.rule_id, 0) + gained
        elif effect.rule_id not in fired:
            fired[effect.rule_id] = 0
    usage = dict(state.usage)
    tracking = programme.periods
    for rule_id, gained in fired.items():
        tracked = tracking[rule_id]
        periods = usage.get(rule_id, {})
        n, amount = periods.get("lifetime", (0, 0))
        if len(tracked) == 1:
            usage[rule_id] = {"lifetime": (n + 1, amount + gained)}
        else:
            usage[rule_id] = _count_periods(dict(periods), tracked, day, gained)
    return balances, usage


def _count_periods(
    periods: dict[str, tuple[int, Amount]], tracked: frozenset[str], day: date, gained: Amount
) -> dict[str, tuple[int, Amount]]:
    for kind, key in period_keys(day):
        if kind not in tracked:
            continue
        n, amount = periods.get(key, (0, 0))
        if n == 0 and kind != "lifetime":
            prefix = f"{kind}:"
            if any(k.startswith(prefix) and k > key for k in periods):
                continue  # a late event for an older period: only lifetime counts it
            periods = {k: v for k, v in periods.items() if not k.startswith(prefix)}
        periods[key] = (n + 1, amount + gained)
    return periods


@dataclass(slots=True)
class ProgrammeCounters:
    """Programme-wide usage per rule: amount issued (budgets), awards, members awarded."""

    issued: dict[str, Amount] = field(default_factory=dict)
    awards: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)


def record_counters(
    counters: ProgrammeCounters, evaluation: Evaluation, state_before: MemberState
) -> None:
    """Add one evaluation to the programme counters (in place; the caller owns them)."""
    issued, awards, members, usage = (
        counters.issued,
        counters.awards,
        counters.members,
        state_before.usage,
    )
    last = None
    for effect in evaluation.effects:
        rule_id = effect.rule_id
        if isinstance(effect, Award):
            issued[rule_id] = issued.get(rule_id, 0) + effect.amount
            awards[rule_id] = awards.get(rule_id, 0) + 1
        if rule_id != last and rule_id not in usage:  # effects of a rule are contiguous
            members[rule_id] = members.get(rule_id, 0) + 1
        last = rule_id
