"""Evaluate segment conditions in Python for one member (the SQL compiler's twin).

The member's context is built from their rows (profile, tier, accounts, badges, consents,
identities, events) as a nested mapping whose paths are the field paths, then the condition
runs through the rules' own compiled closures (``fidelia.kit.conditions``). Windows and
``days_since_*`` are computed here from the member's events, independently of the SQL, which is
what lets the property test compare the two evaluators.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.kit.conditions import Condition, compile_condition, condition_fields
from fidelia.models import (
    Account,
    Consent,
    Event,
    Member,
    MemberBadge,
    MemberIdentity,
    MemberTier,
)
from fidelia.segments.compiler import OUTSIDE, Catalogue
from fidelia.segments.fields import FieldSpec
from fidelia.traits import service as traits_service
from fidelia.traits.schemas import TraitsSection

_DAY = timedelta(days=1)


def member_context(
    session: Session,
    *,
    member: Member,
    catalogue: Catalogue,
    specs: Iterable[FieldSpec],
    now: datetime,
    traits: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The values of ``specs`` for ``member``, nested by field path."""
    specs = list(specs)
    sources: set[str] = {s.source for s in specs}
    ctx: dict[str, Any] = {}
    loaded = _Loaded(session, member, sources)
    if "trait" in sources and traits is None:
        row = traits_service.traits_row(session, member_id=member.id) or {}
        section = catalogue.traits or TraitsSection()
        traits = traits_service.context_for(row, now=now, section=section)
    for spec in specs:
        _put(ctx, spec.path, _value(spec, member, loaded, catalogue, now, traits or {}))
    return ctx


def evaluate(
    session: Session,
    *,
    member: Member,
    conditions: Mapping[str, Condition],
    catalogue: Catalogue,
    now: datetime,
    traits: Mapping[str, Any] | None = None,
) -> set[str]:
    """The codes of ``conditions`` that ``member`` meets now (none if closed or merged)."""
    if member.status in OUTSIDE:
        return set()
    paths = {p for cond in conditions.values() for _, p in condition_fields(cond)}
    specs = [catalogue.resolve(p) for p in sorted(paths)]
    ctx = member_context(
        session, member=member, catalogue=catalogue, specs=specs, now=now, traits=traits
    )
    return {code for code, cond in conditions.items() if compile_condition(cond)(ctx)}


class _Loaded:
    """The member's rows, each table read once and only if a field needs it."""

    def __init__(self, session: Session, member: Member, sources: set[str]) -> None:
        mid = member.id
        self.tier = None
        if "tier" in sources:
            self.tier = session.scalar(select(MemberTier.tier).where(MemberTier.member_id == mid))
        self.accounts: dict[uuid.UUID, int] = {}
        if "wallet" in sources:
            balances = session.execute(
                select(Account.wallet_id, Account.available).where(Account.member_id == mid)
            )
            self.accounts = {wallet: available for wallet, available in balances}
        self.badges: list[str] = []
        if "badges" in sources:
            found = session.scalars(select(MemberBadge.badge).where(MemberBadge.member_id == mid))
            self.badges = sorted(set(found))
        self.consents: dict[str, bool] = {}
        if "consent" in sources:
            decisions = session.execute(
                select(Consent.channel, Consent.granted).where(Consent.member_id == mid)
            )
            self.consents = {channel: granted for channel, granted in decisions}
        self.identities: set[str] = set()
        if "identity" in sources:
            kinds = session.scalars(
                select(MemberIdentity.kind).where(MemberIdentity.member_id == mid)
            )
            self.identities = set(kinds)
        self.events: list[tuple[str, datetime, Any]] = []
        if sources & {"events", "category"}:
            events = session.execute(
                select(Event.type, Event.occurred_at, Event.properties).where(
                    Event.member_id == mid, Event.programme_id == member.programme_id
                )
            )
            self.events = [(t, at, props) for t, at, props in events]


def _value(
    spec: FieldSpec,
    member: Member,
    loaded: _Loaded,
    catalogue: Catalogue,
    now: datetime,
    traits: Mapping[str, Any],
) -> Any:
    if spec.source == "profile":
        if spec.key == "birth_month":
            return member.birth_date.month if member.birth_date else None
        if spec.key == "days_since_enrolment":
            return _days_since(member.enrolled_at, now)
        return getattr(member, spec.key)
    if spec.source == "attributes":
        return (member.attributes or {}).get(spec.key)
    if spec.source == "tier":
        return loaded.tier
    if spec.source == "wallet":
        wallet_id, scale = catalogue.wallets[spec.key]
        return Decimal(loaded.accounts.get(wallet_id, 0)) / (Decimal(10) ** scale)
    if spec.source == "badges":
        return loaded.badges
    if spec.source == "consent":
        return loaded.consents.get(spec.key)
    if spec.source == "identity":
        return spec.key in loaded.identities
    if spec.source in ("events", "category"):
        return _counted(spec, loaded.events, now)
    if spec.source == "trait":
        found = catalogue.trait(spec.key)
        return found.get(traits) if found is not None else None
    raise AssertionError(spec.source)


def _counted(spec: FieldSpec, events: list[tuple[str, datetime, Any]], now: datetime) -> Any:
    if spec.source == "events":
        times = [at for kind, at, _ in events if kind == spec.key]
    else:
        times = [
            at
            for kind, at, props in events
            if kind == "purchase" and _has_category(props, spec.key)
        ]
    if spec.metric == "days_since_last":
        return _days_since(max(times), now) if times else None
    if spec.window is None:
        return len(times)
    since = now - spec.window * _DAY
    return sum(1 for at in times if at >= since)


def _has_category(properties: Any, category: str) -> bool:
    lines = properties.get("lines") if isinstance(properties, dict) else None
    if not isinstance(lines, list):
        return False
    return any(isinstance(line, dict) and line.get("category") == category for line in lines)


def _days_since(at: datetime | None, now: datetime) -> int | None:
    return None if at is None else (now - at) // _DAY


def _put(ctx: dict[str, Any], path: str, value: Any) -> None:
    node = ctx
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
