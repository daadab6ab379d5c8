"""The pure earning engine: one event + member state + programme -> effects with explanations.

Design note
-----------
:func:`evaluate` does no I/O and reads no clock; ``now`` is given (it dates the expiry and
pending overrides of awards). For one event it:

1. builds the evaluation context once (``event.*``, ``member.*``, and ``line.*`` per line);
2. walks the base rules of that event type in precedence order ``(-priority, id)``; each rule
   passes its validity, ``when``, geofence, first-time, ``lines`` and milestone tests, computes
   its amount (rounded per award, then the per-event cap), then its limits, budget and
   first-N scarcity, which may lower the amount or skip the rule (reported in ``skipped``);
3. resolves exclusive groups: ``first`` keeps the first applicable rule in precedence order,
   ``best`` the largest amount (ties: precedence order); other rules stack;
4. runs the boosters the same way on what the surviving base rules awarded.

The amount of an award is allocated to the purchase lines it was computed on (largest
remainder, ties by line order) so that a return can reverse exactly what its lines earned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from fidelia.events.schemas import PurchaseLine
from fidelia.rules.compiler import (
    CompiledProgramme,
    CompiledRule,
    compile_programme,
    window_start,
)
from fidelia.rules.outcome import (
    EMPTY,
    Amount,
    Award,
    AwardBadge,
    Effect,
    EmitEvent,
    Evaluation,
    IssueVoucher,
    LineShare,
    Skipped,
)
from fidelia.rules.schemas import BoosterAward, FixedAward, SpendAward, Strategy
from fidelia.rules.state import EngineEvent, MemberState, ProgrammeCounters, period_keys

__all__ = ["CompiledProgramme", "compile_programme", "evaluate"]
_ZERO, _ONE = Decimal(0), Decimal(1)


class _Line:
    __slots__ = ("after", "before", "category", "ctx", "line", "sku")

    def __init__(self, line: PurchaseLine, after: Decimal, before: Decimal) -> None:
        self.line, self.sku, self.category = line, line.sku, line.category
        self.after, self.before = after, before
        self.ctx: dict[str, Any] | None = None  # built on first use by a line condition


class _Facts:
    __slots__ = (
        "amount", "counters", "ctx", "event", "lines", "now", "periods", "shipping", "state",
        "today",
    )  # fmt: skip

    def __init__(
        self, event: EngineEvent, state: MemberState, counters: ProgrammeCounters, now: datetime
    ) -> None:
        self.event, self.state, self.counters, self.now = event, state, counters, now
        self.today: date = event.occurred_at.date()
        self.ctx: dict[str, Any] = {}
        self.lines: list[_Line] = []
        self.shipping = self.amount = _ZERO
        self.periods: dict[str, str] | None = None


class _Draft:
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
        self.capped_by: list[str] = []


_Fired = tuple[CompiledRule, Amount, Award | None]


def evaluate(
    event: EngineEvent,
    state: MemberState,
    rules: CompiledProgramme,
    counters: ProgrammeCounters,
    now: datetime,
) -> Evaluation:
    """Decide the effects of ``event`` for a member in ``state``; pure and deterministic.

    ``counters`` are the programme-wide usage figures (budgets, first-N); ``now`` is the
    processing time used for expiry and pending dates. The result does not depend on the
    order of the rules in the programme document.
    """
    ruleset = rules.by_type.get(event.type)
    if ruleset is None:
        return EMPTY
    facts = _facts(event, state, rules, counters, now)
    skipped: list[Skipped] = []
    fired = _run_phase(ruleset.base, facts, {}, rules.strategies, skipped)
    if ruleset.boosters and fired:
        awarded = {f[0].id: f[2] for f in fired if f[2] is not None}
        fired += _run_phase(ruleset.boosters, facts, awarded, rules.strategies, skipped)
    if not fired and not skipped:
        return EMPTY
    effects: list[Effect] = []
    for rule, _, award in fired:
        if award is not None:
            effects.append(award)
        if rule.effects:
            effects.extend(_other_effects(rule))
    return Evaluation(tuple(effects), tuple(skipped))


def _facts(
    event: EngineEvent,
    state: MemberState,
    rules: CompiledProgramme,
    counters: ProgrammeCounters,
    now: datetime,
) -> _Facts:
    facts = _Facts(event, state, counters, now)
    local = event.occurred_at.astimezone(rules.tz)
    facts.today = local.date()
    ev: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "channel": event.channel,
        "store": event.store,
        "properties": event.properties,
    }
    facts.ctx = {"event": ev, "member": _member_context(state, local.month)}
    purchase = event.purchase
    if purchase is not None:
        amount = _ZERO
        for line in purchase.lines:
            before = line.quantity * line.unit_price
            after = before - line.discount if line.discount else before
            amount += after
            facts.lines.append(_Line(line, after, before))
        facts.amount, facts.shipping = amount, purchase.shipping
        ev.update(amount=amount, total=purchase.total, shipping=purchase.shipping)
        ev.update(line_count=len(purchase.lines), currency=purchase.currency)
    return facts


def _line_ctx(facts: _Facts, ln: _Line) -> dict[str, Any]:
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


def _member_context(state: MemberState, month: int) -> dict[str, Any]:
    birth = state.attributes.get("birth_date")
    birth_month = birth.month if isinstance(birth, date) else None
    if isinstance(birth, str) and len(birth) >= 7 and birth[5:7].isdigit():
        birth_month = int(birth[5:7])
    return {
        "tier": state.tier,
        "attributes": state.attributes,
        "balances": state.balances,
        "birth_month": birth_month,
        "is_birthday_month": birth_month == month,
        "counters": {
            "purchases": state.purchases,
            "spend": state.spend,
            "events": state.event_counts,
            "categories": state.categories,
        },
    }


def _run_phase(
    rules: tuple[CompiledRule, ...],
    facts: _Facts,
    awarded: dict[str, Award],
    strategies: Mapping[str, Strategy],
    skipped: list[Skipped],
) -> list[_Fired]:
    fired: list[_Fired] = []
    grouped = False
    for rule in rules:
        out = _apply(rule, facts, awarded)
        if out is None:
            continue
        if isinstance(out, Skipped):
            skipped.append(out)
        else:
            fired.append(out)
            grouped = grouped or rule.group is not None
    return _resolve_groups(fired, strategies, skipped) if grouped else fired


def _resolve_groups(
    fired: list[_Fired], strategies: Mapping[str, Strategy], skipped: list[Skipped]
) -> list[_Fired]:
    winners: dict[str, _Fired] = {}
    for f in fired:  # already in precedence order
        group = f[0].group
        if group is None:
            continue
        current = winners.get(group)
        if current is None or (strategies[group] == "best" and f[1] > current[1]):
            winners[group] = f
    kept = []
    for f in fired:
        rule, group = f[0], f[0].group
        if group is None or winners[group] is f:
            kept.append(f)
        else:
            reason = f"exclusive group {group}: {winners[group][0].id} applies"
            skipped.append(Skipped(rule.id, rule.version, reason))
    return kept


def _apply(rule: CompiledRule, facts: _Facts, awarded: dict[str, Award]) -> _Fired | Skipped | None:
    if rule.when is not None and not rule.when(facts.ctx):
        return None
    if rule.simple:
        lines = facts.lines
    else:
        matched = _matching_lines(rule, facts) if _gates(rule, facts) else None
        if matched is None:
            return None
        lines = matched
    draft = _draft(rule, facts, lines, awarded)
    if draft is None:
        return None
    if rule.limited:
        return _within_limits(rule, facts, draft)
    return _fired(rule, facts, draft)


def _gates(rule: CompiledRule, facts: _Facts) -> bool:
    """Validity dates, geofence, first time and milestone."""
    at = facts.event.occurred_at
    if (rule.valid_from is not None and at < rule.valid_from) or (
        rule.valid_to is not None and at >= rule.valid_to
    ):
        return False
    if rule.near is not None and not rule.near(facts.ctx):
        return False
    if rule.first_time == "purchase" and facts.state.purchases > 0:
        return False
    if rule.first_time == "event_type" and facts.state.event_counts.get(facts.event.type, 0):
        return False
    return rule.milestone is None or _milestone_reached(rule, facts)


def _matching_lines(rule: CompiledRule, facts: _Facts) -> list[_Line] | None:
    lines = facts.lines
    if rule.lines is not None:
        test = rule.lines
        lines = [ln for ln in lines if test(ln.ctx if ln.ctx is not None else _line_ctx(facts, ln))]
    if rule.first_time == "category":
        seen = facts.state.categories
        lines = [line for line in lines if line.category and line.category not in seen]
    elif rule.lines is None:
        return lines
    return lines or None


def _milestone_reached(rule: CompiledRule, facts: _Facts) -> bool:
    goal = rule.milestone
    assert goal is not None
    if facts.state.used(rule.id)[0] > 0:  # reached once already
        return False
    count, spend = facts.state.purchases_since(window_start(goal.window, facts.today))
    count, spend = count + 1, spend + facts.amount  # this purchase counts
    if goal.purchases is not None and count < goal.purchases:
        return False
    return goal.spend is None or spend >= goal.spend


def _draft(
    rule: CompiledRule, facts: _Facts, lines: list[_Line], awarded: dict[str, Award]
) -> _Draft | None:
    award = rule.award
    if award is None:
        return _Draft(_ZERO, None, None, _ONE, [])
    if isinstance(award, SpendAward):
        draft = _spend(rule, award, facts, lines)
    elif isinstance(award, BoosterAward):
        draft = _boost(rule, award, lines, awarded)
    else:
        draft = _fixed(award, lines)
    if draft is None:
        return None
    draft.amount = draft.amount.quantize(rule.quantum, rule.rounding)
    if award.cap is not None and draft.amount > award.cap:
        draft.amount = award.cap.quantize(rule.quantum, ROUND_FLOOR)
        draft.capped_by.append(f"cap {award.cap} per event")
    if draft.amount <= 0 and not rule.effects:
        return None
    return draft


def _spend(
    rule: CompiledRule, award: SpendAward, facts: _Facts, lines: list[_Line]
) -> _Draft | None:
    tier = facts.state.tier
    rate = award.rate_by_tier.get(tier, award.rate) if tier is not None else award.rate
    if rate is None:
        return None
    if award.base.discounts == "after":
        parts = [(ln.sku, ln.after, ln.after) for ln in lines]
    else:
        parts = [(ln.sku, ln.before, ln.before) for ln in lines]
    whole_basket = rule.lines is None and rule.first_time != "category"
    if award.base.shipping == "include" and whole_basket and facts.shipping > 0:
        parts.append(("shipping", facts.shipping, facts.shipping))
    base = parts[0][1] if len(parts) == 1 else sum((p[1] for p in parts), _ZERO)
    if award.min_base is not None and base < award.min_base:
        return None
    return _Draft(base * rate * award.multiplier, base, rate, award.multiplier, parts)


def _boost(
    rule: CompiledRule, award: BoosterAward, lines: list[_Line], awarded: dict[str, Award]
) -> _Draft | None:
    target = awarded.get(award.of)
    if target is None:
        return None
    shares = target.lines
    if rule.lines is not None:
        skus = {line.sku for line in lines}
        shares = tuple(s for s in shares if s.sku in skus)
    base = sum((s.base for s in shares), _ZERO)
    if not shares or (award.min_base is not None and base < award.min_base):
        return None
    parts = [(s.sku, s.base, Decimal(s.amount)) for s in shares]
    raw = sum((p[2] for p in parts), _ZERO) * (award.multiplier - 1)
    return _Draft(raw, base, None, award.multiplier, parts)


def _fixed(award: FixedAward, lines: list[_Line]) -> _Draft:
    parts = [(line.sku, line.after, line.after) for line in lines]
    if not parts:
        return _Draft(award.amount, None, None, _ONE, parts)
    base = parts[0][1] if len(parts) == 1 else sum((p[1] for p in parts), _ZERO)
    return _Draft(award.amount, base, None, _ONE, parts)


def _within_limits(rule: CompiledRule, facts: _Facts, draft: _Draft) -> _Fired | Skipped:
    state, amount = facts.state, draft.amount
    if facts.periods is None:
        facts.periods = dict(period_keys(facts.today))
    for limit in rule.limits:
        count, used = state.used(rule.id, facts.periods[limit.per])
        if limit.max_awards is not None and count >= limit.max_awards:
            return Skipped(rule.id, rule.version, f"limit {limit.max_awards} per {limit.per}")
        if limit.max_amount is not None:
            room = limit.max_amount - used
            if room <= 0:
                return Skipped(rule.id, rule.version, f"limit {limit.max_amount} per {limit.per}")
            if amount > room:
                amount = room.quantize(rule.quantum, ROUND_FLOOR)
                draft.capped_by.append(f"limit {limit.max_amount} per {limit.per}")
    if rule.budget is not None:
        room = rule.budget - facts.counters.issued.get(rule.id, 0)
        if room <= 0:
            return Skipped(rule.id, rule.version, "programme budget spent")
        if amount > room:
            amount = room.quantize(rule.quantum, ROUND_FLOOR)
            draft.capped_by.append(f"programme budget {rule.budget}")
    first_n = rule.first_n_members
    members = facts.counters.members.get(rule.id, 0)
    if first_n is not None and members >= first_n and state.used(rule.id)[0] == 0:
        return Skipped(rule.id, rule.version, f"only the first {first_n} members")
    draft.amount = amount
    return _fired(rule, facts, draft)


def _fired(rule: CompiledRule, facts: _Facts, draft: _Draft) -> _Fired:
    """Money stays a Decimal (already quantised to 0.01); points become an int."""
    amount = draft.amount if rule.money else int(draft.amount)
    if rule.wallet is None or amount <= 0:
        return (rule, amount, None)
    return (rule, amount, _award(rule, facts, draft, amount))


def _award(rule: CompiledRule, facts: _Facts, draft: _Draft, amount: Amount) -> Award:
    parts, money = draft.parts, rule.money
    if len(parts) == 1:
        sku, base, _ = parts[0]
        lines: tuple[LineShare, ...] = (LineShare(sku, base, amount),)
    else:
        shares = allocate(int(amount * 100) if money else int(amount), [p[2] for p in parts])
        lines = tuple(
            LineShare(sku, base, Decimal(n) / 100 if money else n)
            for (sku, base, _), n in zip(parts, shares, strict=True)
        )
    now, wallet = facts.now, rule.wallet
    assert wallet is not None
    return Award(
        rule.id,
        rule.version,
        wallet,
        amount,
        draft.base,
        draft.rate,
        draft.multiplier,
        lines,
        tuple(draft.capped_by) if draft.capped_by else (),
        facts.state.tier if rule.tiered else None,
        None if rule.expires_in_days is None else now + timedelta(days=rule.expires_in_days),
        None if rule.pending_days is None else now + timedelta(days=rule.pending_days),
    )


def allocate(units: int, weights: list[Decimal]) -> list[int]:
    """Split ``units`` in proportion to ``weights`` (largest remainder; ties by position).

    The parts always sum to ``units``; with no positive weight the split is even.
    """
    n = len(weights)
    if n <= 1:
        return [units] * n
    total = sum(weights, _ZERO)
    if total <= 0:
        weights, total = [_ONE] * n, Decimal(n)
    exact = [w * units / total for w in weights]
    parts = [int(e) for e in exact]
    rest = units - sum(parts)
    order = sorted(range(n), key=lambda i: (parts[i] - exact[i], i))
    for i in order[:rest]:
        parts[i] += 1
    return parts


def _other_effects(rule: CompiledRule) -> list[Effect]:
    out: list[Effect] = []
    for doc in rule.effects:
        if doc.kind == "voucher":
            out.append(IssueVoucher(rule.id, rule.version, doc.reward))
        elif doc.kind == "badge":
            out.append(AwardBadge(rule.id, rule.version, doc.badge))
        else:
            out.append(EmitEvent(rule.id, rule.version, doc.event, dict(doc.data)))
    return out
