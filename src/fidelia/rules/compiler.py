"""Compile a validated :class:`ProgrammeRules` once into plain, pre-sorted Python objects.

Design note
-----------
Everything that does not depend on the event is done here, once per programme version:
conditions become closures, the time zone becomes a ``ZoneInfo``, rounding policies become
``decimal`` constants, rules are grouped by event type and sorted by their precedence key
``(-priority, id)``: the order the engine walks them never depends on the order rules were
written or edited. Boosters are kept apart because they read what the other rules awarded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fidelia.kit.conditions import Predicate, compile_condition, field_getter
from fidelia.rules.schemas import (
    BoosterAward,
    EarningRule,
    Effect,
    FixedAward,
    Geofence,
    Limit,
    Milestone,
    ProgrammeRules,
    SpendAward,
    Strategy,
    WalletDef,
    Window,
    load_programme,
)

ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceil": ROUND_CEILING}
POINT, CENT = Decimal(1), Decimal("0.01")
EARTH_RADIUS_KM = 6371.0088
_LIFETIME = frozenset({"lifetime"})


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule, ready to run: closures, constants and its precedence key."""

    id: str
    version: int
    on: str
    priority: int
    valid_from: datetime | None
    valid_to: datetime | None
    when: Predicate | None
    lines: Predicate | None
    first_time: str | None
    near: Predicate | None
    milestone: Milestone | None
    award: SpendAward | BoosterAward | FixedAward | None
    wallet: str | None
    money: bool
    quantum: Decimal
    rounding: str
    tiered: bool
    expires_in_days: int | None
    pending_days: int | None
    effects: tuple[Effect, ...]
    limits: tuple[Limit, ...]
    budget: Decimal | None
    first_n_members: int | None
    group: str | None
    limited: bool
    simple: bool
    whole_basket: bool

    @property
    def sort_key(self) -> tuple[int, str]:
        """Precedence: higher priority first, then rule id; never document order."""
        return (-self.priority, self.id)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules listening to one event type: base rules, then boosters."""

    base: tuple[CompiledRule, ...]
    boosters: tuple[CompiledRule, ...]


@dataclass(frozen=True, slots=True)
class CompiledProgramme:
    """A programme version compiled for the engine (immutable, shareable across threads)."""

    doc: ProgrammeRules
    tz: ZoneInfo
    wallets: Mapping[str, WalletDef]
    by_type: Mapping[str, RuleSet]
    strategies: Mapping[str, Strategy]
    periods: Mapping[str, frozenset[str]]

    def tracked_periods(self, rule_id: str) -> frozenset[str]:
        """Period kinds whose usage the member state keeps for a rule (always ``lifetime``)."""
        return self.periods.get(rule_id, _LIFETIME)


def compile_programme(doc: ProgrammeRules | Mapping[str, Any]) -> CompiledProgramme:
    """Validate (if given a raw dict) and compile a programme once; reuse it for every event.

    Inactive rules are left out. Raises :class:`~fidelia.errors.ValidationFailed` on a bad
    document.
    """
    doc = load_programme(doc)
    tz = ZoneInfo(doc.time_zone)
    wallets = {w.name: w for w in doc.wallets}
    compiled = [_compile_rule(rule, tz, wallets, doc) for rule in doc.rules if rule.active]
    by_type: dict[str, RuleSet] = {}
    for event_type in sorted({r.event_type for r in doc.rules if r.active}):
        mine = sorted((c for c in compiled if c.on == event_type), key=_key)
        by_type[event_type] = RuleSet(
            base=tuple(c for c in mine if not isinstance(c.award, BoosterAward)),
            boosters=tuple(c for c in mine if isinstance(c.award, BoosterAward)),
        )
    periods = {r.id: frozenset({"lifetime", *(lim.per for lim in r.limits)}) for r in doc.rules}
    return CompiledProgramme(doc, tz, wallets, by_type, dict(doc.exclusive_groups), periods)


def _key(rule: CompiledRule) -> tuple[int, str]:
    return rule.sort_key


def _compile_rule(
    rule: EarningRule, tz: ZoneInfo, wallets: Mapping[str, WalletDef], doc: ProgrammeRules
) -> CompiledRule:
    award = rule.award
    wallet = _wallet_of(rule, doc)
    money = wallet is not None and wallets[wallet].unit == "money"
    return CompiledRule(
        id=rule.id,
        version=rule.version,
        on=rule.event_type,
        priority=rule.priority,
        valid_from=rule.valid_from,
        valid_to=rule.valid_to,
        when=compile_condition(rule.when, tz=tz) if rule.when is not None else None,
        lines=compile_condition(rule.lines, tz=tz) if rule.lines is not None else None,
        first_time=rule.first_time,
        near=compile_geofence(rule.near) if rule.near is not None else None,
        milestone=rule.milestone,
        award=award,
        wallet=wallet,
        money=money,
        quantum=CENT if money else POINT,
        rounding=ROUNDING[award.rounding] if award is not None else ROUND_FLOOR,
        tiered=isinstance(award, SpendAward) and bool(award.rate_by_tier),
        expires_in_days=award.expires_in_days if award is not None else None,
        pending_days=award.pending_days if award is not None else None,
        effects=tuple(rule.effects),
        limits=tuple(rule.limits),
        budget=rule.budget,
        first_n_members=rule.first_n_members,
        group=rule.exclusive_group,
        limited=bool(rule.limits) or rule.budget is not None or rule.first_n_members is not None,
        simple=rule.valid_from is None
        and rule.valid_to is None
        and rule.near is None
        and rule.first_time is None
        and rule.lines is None
        and rule.milestone is None,
        whole_basket=rule.lines is None and rule.first_time != "category",
    )


def _wallet_of(rule: EarningRule, doc: ProgrammeRules) -> str | None:
    award = rule.award
    if isinstance(award, BoosterAward):
        target = next(r for r in doc.rules if r.id == award.of)
        return _wallet_of(target, doc)
    return award.wallet if award is not None else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def compile_geofence(fence: Geofence) -> Predicate:
    """A predicate: the event's coordinates lie within the radius of one of the places."""
    get_lat, get_lon = field_getter(fence.lat_field), field_getter(fence.lon_field)
    places = tuple((p.lat, p.lon) for p in fence.places)
    radius = fence.radius_km

    def near(ctx: Mapping[str, Any]) -> bool:
        try:
            lat, lon = float(get_lat(ctx)), float(get_lon(ctx))
        except (TypeError, ValueError):
            return False
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return False
        return any(haversine_km(lat, lon, plat, plon) <= radius for plat, plon in places)

    return near


def window_start(window: Window, today: date) -> date | None:
    """First local date of a milestone window ending today (None: the member's lifetime)."""
    if window.kind == "rolling_days" and window.days is not None:
        return date.fromordinal(today.toordinal() - window.days + 1)
    if window.kind == "calendar_month":
        return today.replace(day=1)
    if window.kind == "calendar_year":
        return date(today.year, 1, 1)
    if window.kind == "since":
        return window.since
    return None
