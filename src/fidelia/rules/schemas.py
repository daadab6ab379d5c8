"""Earning rules as data: the documents a marketer writes in YAML or sends through the API.

Design note
-----------
A programme's earning side is one :class:`ProgrammeRules` document: the wallets it awards
into, the time zone and currency, the exclusive groups and the rules. Every model forbids
unknown keys, so a typo is an error, not a silently ignored setting.

A rule reads top to bottom: it listens to one ``event_type``, must pass its ``when``
condition (event and member fields, time windows, channel, store, minimum basket), optionally
restricts a purchase to the ``lines`` that match, may require a first time, a geofence or a
milestone, then gives an ``award`` (spend-based, booster of another rule, or fixed) and/or
other ``effects`` (voucher, badge, domain event), within its ``limits``, ``budget`` and
``first_n_members``. Precedence is explicit: ``priority`` (higher first), then the rule ``id``;
an ``exclusive_group`` lets only one rule of the group apply (``best`` or ``first``). Document
order never matters.

:func:`load_programme` validates a raw document (field errors from Pydantic and cross-field
checks alike) and raises :class:`~fidelia.errors.ValidationFailed` with the path of the error.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fidelia.errors import ValidationFailed
from fidelia.kit.bounds import Count, Day, FreeJson, Instant, ShortText
from fidelia.kit.conditions import Condition, condition_fields, validation_failed

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
EventType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")]
Rate = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=6)]
Amount = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=4)]
Days = Annotated[int, Field(ge=0, le=3650)]
Rounding = Literal["floor", "half_up", "ceil"]
Strategy = Literal["best", "first"]
Period = Literal["day", "week", "month", "year", "lifetime"]
FirstTime = Literal["purchase", "category", "event_type"]


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WalletDef(Doc):
    """A balance the programme awards into: points (integers) or money (cents)."""

    name: Slug
    unit: Literal["points", "money"] = "points"
    redeemable: bool = Field(True, description="False for status points: no money liability")


class SpendBase(Doc):
    """What a spend award is computed on."""

    discounts: Literal["after", "before"] = "after"
    shipping: Literal["exclude", "include"] = Field(
        "exclude", description="include adds the shipping to a whole-basket award"
    )


class _Grant(Doc):
    rounding: Rounding = "floor"
    cap: Amount | None = Field(None, description="Most this award gives for one event")
    expires_in_days: Days | None = Field(None, description="Overrides the wallet's expiry")
    pending_days: Days | None = Field(None, description="Overrides the wallet's pending delay")


class SpendAward(_Grant):
    """``rate`` units per currency unit of the base, ``rate_by_tier`` overriding it per tier."""

    kind: Literal["spend"]
    wallet: Slug = "points"
    rate: Rate | None = Decimal(1)
    rate_by_tier: dict[ShortText, Rate] = Field(default_factory=dict, max_length=20)
    multiplier: Annotated[Decimal, Field(gt=0, max_digits=8, decimal_places=4)] = Decimal(1)
    base: SpendBase = SpendBase()
    min_base: Amount | None = Field(None, description="Matching lines must reach this amount")


class BoosterAward(_Grant):
    """Multiplies what another (spend) rule gave the matching lines: x2 gives as much again."""

    kind: Literal["booster"]
    of: Slug
    multiplier: Annotated[Decimal, Field(gt=1, max_digits=8, decimal_places=4)]
    min_base: Amount | None = None


class FixedAward(_Grant):
    """A fixed amount (review, recycling, check-in, milestone, first purchase...)."""

    kind: Literal["fixed"]
    wallet: Slug = "points"
    amount: Amount


Award = Annotated[SpendAward | BoosterAward | FixedAward, Field(discriminator="kind")]


class VoucherEffect(Doc):
    kind: Literal["voucher"]
    reward: Slug


class BadgeEffect(Doc):
    kind: Literal["badge"]
    badge: Slug


class EmitEffect(Doc):
    kind: Literal["emit"]
    event: EventType
    data: FreeJson = Field(default_factory=dict)


Effect = Annotated[VoucherEffect | BadgeEffect | EmitEffect, Field(discriminator="kind")]


class Place(Doc):
    id: str | None = Field(None, max_length=64)
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class Geofence(Doc):
    """The event's coordinates must be within ``radius_km`` of one of ``places`` (haversine)."""

    places: list[Place] = Field(min_length=1, max_length=1000)
    radius_km: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
    lat_field: ShortText = "event.properties.lat"
    lon_field: ShortText = "event.properties.lon"


class Window(Doc):
    """A period over the member's purchase counters, in the programme time zone."""

    kind: Literal["lifetime", "rolling_days", "calendar_month", "calendar_year", "since"]
    days: Annotated[int, Field(ge=1, le=366)] | None = None
    since: Day | None = None

    @model_validator(mode="after")
    def _complete(self) -> Window:
        if (self.kind == "rolling_days") != (self.days is not None):
            raise ValueError("days is required with rolling_days, and only with it")
        if (self.kind == "since") != (self.since is not None):
            raise ValueError("since is required with kind since, and only with it")
        return self


class Milestone(Doc):
    """Purchases and spend over a window; reached once per member (its lifetime usage)."""

    window: Window = Window(kind="lifetime")
    purchases: Count | None = None
    spend: Amount | None = None

    @model_validator(mode="after")
    def _some_goal(self) -> Milestone:
        if self.purchases is None and self.spend is None:
            raise ValueError("give purchases, spend or both")
        return self


class Limit(Doc):
    """Per member and per period: at most ``max_awards`` awards and/or ``max_amount`` units."""

    per: Period
    max_awards: Count | None = None
    max_amount: Amount | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Limit:
        if self.max_awards is None and self.max_amount is None:
            raise ValueError("give max_awards, max_amount or both")
        return self


class EarningRule(Doc):
    """One earning rule; ``id`` + ``version`` are recorded on everything it awards."""

    id: Slug
    version: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    valid_from: Instant | None = None
    valid_to: Instant | None = None
    event_type: EventType = "purchase"
    when: Condition | None = None
    lines: Condition | None = None
    first_time: FirstTime | None = None
    near: Geofence | None = None
    milestone: Milestone | None = None
    award: Award | None = None
    effects: list[Effect] = Field(default_factory=list, max_length=20)
    limits: list[Limit] = Field(default_factory=list, max_length=10)
    budget: Amount | None = Field(None, description="Programme-wide total this rule may award")
    first_n_members: Count | None = None
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    exclusive_group: Slug | None = None

    @model_validator(mode="after")
    def _coherent(self) -> EarningRule:
        if self.award is None and not self.effects:
            raise ValueError("a rule needs an award, effects, or both")
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_from must be before valid_to")
        return self


class ProgrammeRules(Doc):
    """The earning side of a programme: wallets, calendar, groups and rules."""

    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    time_zone: str = "UTC"
    wallets: list[WalletDef] = Field(
        default_factory=lambda: [WalletDef(name="points")], min_length=1, max_length=20
    )
    exclusive_groups: dict[Slug, Strategy] = Field(default_factory=dict, max_length=50)
    rules: list[EarningRule] = Field(default_factory=list, max_length=500)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def wallet(self, name: str) -> WalletDef | None:
        """The wallet called ``name``, if the programme declares it."""
        return next((w for w in self.wallets if w.name == name), None)


PURCHASE_ONLY = "only purchase rules can use this"
ROOTS = {"when": ("event", "member", "traits"), "lines": ("event", "member", "line", "traits")}


def load_programme(data: Any) -> ProgrammeRules:
    """Validate a raw document (dict from JSON/YAML) into :class:`ProgrammeRules`.

    Raises :class:`ValidationFailed` whose ``fields`` carry the path of each error.
    """
    if isinstance(data, ProgrammeRules):
        doc = data
    else:
        try:
            doc = ProgrammeRules.model_validate(data)
        except ValidationError as exc:
            raise validation_failed(exc) from None
    check_programme(doc)
    return doc


def check_programme(doc: ProgrammeRules) -> None:
    """Cross-field checks Pydantic cannot express per field; raises on the first problem."""
    _unique([w.name for w in doc.wallets], "wallets", "name")
    _unique([r.id for r in doc.rules], "rules", "id")
    by_id = {r.id: r for r in doc.rules}
    group_wallets: dict[str, set[tuple[str | None, bool]]] = {}
    for i, rule in enumerate(doc.rules):
        _check_rule(doc, rule, ("rules", i), by_id)
        if rule.exclusive_group is not None:
            wallet = _award_wallet(rule, by_id)
            phase = isinstance(rule.award, BoosterAward)
            group_wallets.setdefault(rule.exclusive_group, set()).add((wallet, phase))
            if len(group_wallets[rule.exclusive_group]) > 1:
                raise ValidationFailed.on(
                    ("rules", i, "exclusive_group"),
                    "rules of one group must award into the same wallet and all be boosters"
                    " or all not be",
                )


def trait_fields(doc: ProgrammeRules) -> list[tuple[tuple[str | int, ...], str]]:
    """Where the rules read a trait, with its path (``traits.rfm_cell``): the programme checks
    the names against the traits registry (rules sit below traits and cannot)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for i, rule in enumerate(doc.rules):
        for key in ("when", "lines"):
            cond = getattr(rule, key)
            for where, path in condition_fields(cond) if cond is not None else []:
                if path.split(".")[0] == "traits":
                    found.append((("rules", i, key, *where), path))
    return found


def _unique(values: list[str], where: str, key: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValidationFailed.on((where, i, key), f"duplicate {key} {value!r}")
        seen.add(value)


def _award_wallet(rule: EarningRule, by_id: dict[str, EarningRule]) -> str | None:
    if isinstance(rule.award, BoosterAward):
        target = by_id.get(rule.award.of)
        return _award_wallet(target, {}) if target is not None else None
    return rule.award.wallet if rule.award is not None else None


def _check_rule(
    doc: ProgrammeRules, rule: EarningRule, loc: tuple[str | int, ...], by_id: dict[str, Any]
) -> None:
    purchase = rule.event_type == "purchase"
    needs_purchase = [
        ("lines", rule.lines is not None),
        ("first_time", rule.first_time in ("purchase", "category")),
        ("milestone", rule.milestone is not None),
        ("award", isinstance(rule.award, SpendAward | BoosterAward)),
    ]
    for field, used in needs_purchase:
        if used and not purchase:
            raise ValidationFailed.on((*loc, field), PURCHASE_ONLY)
    for key in ("when", "lines"):
        cond = getattr(rule, key)
        for where, path in condition_fields(cond) if cond is not None else []:
            if path.split(".")[0] not in ROOTS[key]:
                roots = ", ".join(ROOTS[key])
                raise ValidationFailed.on((*loc, key, *where), f"fields here start with {roots}")
    if rule.exclusive_group is not None and rule.exclusive_group not in doc.exclusive_groups:
        raise ValidationFailed.on((*loc, "exclusive_group"), "declare it in exclusive_groups")
    if rule.award is not None:
        _check_award(doc, rule.award, (*loc, "award"), by_id)


def _check_award(
    doc: ProgrammeRules, award: Any, loc: tuple[str | int, ...], by_id: dict[str, EarningRule]
) -> None:
    if isinstance(award, BoosterAward):
        target = by_id.get(award.of)
        if target is None or not isinstance(target.award, SpendAward):
            raise ValidationFailed.on((*loc, "of"), "must name a spend rule of this programme")
        return
    if doc.wallet(award.wallet) is None:
        raise ValidationFailed.on((*loc, "wallet"), f"no wallet named {award.wallet!r}")
    if isinstance(award, SpendAward) and award.rate is None and not award.rate_by_tier:
        raise ValidationFailed.on((*loc, "rate"), "give a rate, a rate_by_tier, or both")
