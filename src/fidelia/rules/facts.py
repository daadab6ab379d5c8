"""What the engine computes once per event, before any rule runs.

Design note
-----------
:func:`build_facts` turns an event and a member state into the evaluation context the
compiled conditions read (``event.*``, ``member.*``, ``traits.*``; ``line.*`` per line, built on
first use) and the per-line amounts every spend rule shares, so that each rule does only its own
work.
These classes are internal to the engine: plain ``__slots__`` classes, cheap to create.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fidelia.events.schemas import PurchaseLine
from fidelia.kit.conditions import local_time
from fidelia.rules.compiler import CompiledProgramme, CompiledRule
from fidelia.rules.outcome import Amount, Award
from fidelia.rules.state import EngineEvent, MemberState, ProgrammeCounters

_ZERO = Decimal(0)


class Line:
    __slots__ = ("after", "before", "category", "ctx", "line", "sku")

    def __init__(self, line: PurchaseLine, after: Decimal, before: Decimal) -> None:
        self.line, self.sku, self.category = line, line.sku, line.category
        self.after, self.before = after, before
        self.ctx: dict[str, Any] | None = None  # built on first use by a line condition


class Facts:
    __slots__ = (
        "after_parts", "amount", "counters", "ctx", "event", "lines", "now", "periods",
        "shipping", "state", "today",
    )  # fmt: skip

    def __init__(
        self,
        event: EngineEvent,
        state: MemberState,
        counters: ProgrammeCounters,
        now: datetime,
        today: date,
        ctx: dict[str, Any],
    ) -> None:
        self.event, self.state, self.counters, self.now = event, state, counters, now
        self.today, self.ctx = today, ctx
        self.lines: list[Line] = []
        self.after_parts: list[tuple[str, Decimal, Decimal]] = []  # shared: never mutate
        self.shipping = self.amount = _ZERO
        self.periods: dict[str, str] | None = None


class Draft:
    __slots__ = ("amount", "base", "capped_by", "multiplier", "parts", "rate")

    def __init__(
        self,
        amount: Decimal,
        base: Decimal | None,
        rate: Decimal | None,
        multiplier: Decimal,
        parts: list[tuple[str, Decimal, Decimal]],  # sku, base, weight
    ) -> None:
        self.amount, self.base, self.rate, self.multiplier = amount, base, rate, multiplier
        self.parts = parts
        self.capped_by: tuple[str, ...] = ()


Fired = tuple[CompiledRule, Amount, Award | None]


def build_facts(
    event: EngineEvent,
    state: MemberState,
    rules: CompiledProgramme,
    counters: ProgrammeCounters,
    now: datetime,
) -> Facts:
    local = local_time(event.occurred_at, rules.tz)
    ev: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "channel": event.channel,
        "store": event.store,
        "properties": event.properties,
    }
    ctx = {"event": ev, "member": member_context(state, local.month), "traits": state.traits}
    facts = Facts(event, state, counters, now, local.date(), ctx)
    purchase = event.purchase
    if purchase is not None:
        amount = _ZERO
        lines, parts = facts.lines, facts.after_parts
        for line in purchase.lines:
            before = line.quantity * line.unit_price
            after = before - line.discount if line.discount else before
            amount += after
            lines.append(Line(line, after, before))
            parts.append((line.sku, after, after))
        facts.amount, facts.shipping = amount, purchase.shipping
        ev["amount"], ev["total"], ev["shipping"] = amount, purchase.total, purchase.shipping
        ev["line_count"], ev["currency"] = len(lines), purchase.currency
    return facts


def line_context(facts: Facts, ln: Line) -> dict[str, Any]:
    line = ln.line
    ln.ctx = {
        **facts.ctx,
        "line": {
            "sku": line.sku,
            "name": line.name,
            "category": line.category,
            "brand": line.brand,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount": line.discount,
            "amount": ln.after,
        },
    }
    return ln.ctx


def member_context(state: MemberState, month: int) -> dict[str, Any]:
    birth = state.attributes.get("birth_date") if state.attributes else None
    birth_month = None
    if isinstance(birth, str) and len(birth) >= 7 and birth[5:7].isdigit():
        birth_month = int(birth[5:7])
    elif isinstance(birth, date):
        birth_month = birth.month
    return {
        "tier": state.tier,
        "attributes": state.attributes,
        "balances": state.balances,
        "birth_month": birth_month,
        "is_birthday_month": birth_month == month,
        "segments": state.segments,
        "counters": {
            "purchases": state.purchases,
            "spend": state.spend,
            "events": state.event_counts,
            "categories": state.categories,
        },
    }
