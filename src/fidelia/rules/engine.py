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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

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
_ZERO = Decimal(0)


@dataclass(slots=True)
class _Line:
    sku: str
    category: str | None
    after: Decimal
    before: Decimal
    ctx: dict[str, Any]


@dataclass(slots=True)
class _Facts:
    event: EngineEvent
    state: MemberState
    counters: ProgrammeCounters
    now: datetime
    today: date
    ctx: dict[str, Any]
    lines: list[_Line]
    shipping: Decimal
    amount: Decimal
    periods: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Draft:
    amount: Decimal
    base: Decimal | None = None
    rate: Decimal | None = None
    multiplier: Decimal = Decimal(1)
    parts: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)  # sku, base, weight
    capped_by: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Fired:
    rule: CompiledRule
    amount: Amount
    award: Award | None


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
    base = _run_phase(ruleset.base, facts, {}, rules.strategies, skipped)
    fired = base
    if ruleset.boosters:
        awarded = {f.rule.id: f.award for f in base if f.award is not None}
        fired = base + _run_phase(ruleset.boosters, facts, awarded, rules.strategies, skipped)
    if not fired and not skipped:
        return EMPTY
    return Evaluation(tuple(e for f in fired for e in _effects_of(f)), tuple(skipped))


def _facts(
    event: EngineEvent,
    state: MemberState,
    rules: CompiledProgramme,
    counters: ProgrammeCounters,
    now: datetime,
) -> _Facts:
    local = event.occurred_at.astimezone(rules.tz)
    ev: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "channel": event.channel,
        "store": event.store,
        "properties": event.properties,
    }
    member = _member_context(state, local.month)
    ctx = {"event": ev, "member": member}
    facts = _Facts(event, state, counters, now, local.date(), ctx, [], _ZERO, _ZERO)
    purchase = event.purchase
    if purchase is not None:
        for line in purchase.lines:
            before = line.quantity * line.unit_price
            after = before - line.discount
            facts.amount += after
            line_ctx = {
                "sku": line.sku,
                "name": line.name,
                "category": line.category,
                "brand": line.brand,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount": line.discount,
                "amount": after,
            }
            row = {"event": ev, "member": member, "line": line_ctx}
            facts.lines.append(_Line(line.sku, line.category, after, before, row))
        facts.shipping = purchase.shipping
        ev.update(amount=facts.amount, total=purchase.total, shipping=purchase.shipping)
        ev.update(line_count=len(purchase.lines), currency=purchase.currency)
    return facts


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
    for rule in rules:
        out = _apply(rule, facts, awarded)
        if isinstance(out, Skipped):
            skipped.append(out)
        elif out is not None:
            fired.append(out)
    if any(f.rule.group is not None for f in fired):
        return _resolve_groups(fired, strategies, skipped)
    return fired


def _resolve_groups(
    fired: list[_Fired], strategies: Mapping[str, Strategy], skipped: list[Skipped]
) -> list[_Fired]:
    winners: dict[str, _Fired] = {}
    for f in fired:  # already in precedence order
        group = f.rule.group
        if group is None:
            continue
        current = winners.get(group)
        if current is None or (strategies[group] == "best" and f.amount > current.amount):
            winners[group] = f
    kept = []
    for f in fired:
        group = f.rule.group
        if group is None or winners[group] is f:
            kept.append(f)
        else:
            reason = f"exclusive group {group}: {winners[group].rule.id} applies"
            skipped.append(Skipped(f.rule.id, f.rule.version, reason))
    return kept


def _apply(rule: CompiledRule, facts: _Facts, awarded: dict[str, Award]) -> _Fired | Skipped | None:
    if not _eligible(rule, facts):
        return None
    lines = _matching_lines(rule, facts)
    if lines is None:
        return None
    if rule.milestone is not None and not _milestone_reached(rule, facts):
        return None
    draft = _draft(rule, facts, lines, awarded)
    if draft is None:
        return None
    return _within_limits(rule, facts, draft)


def _eligible(rule: CompiledRule, facts: _Facts) -> bool:
    at = facts.event.occurred_at
    if rule.valid_from is not None and at < rule.valid_from:
        return False
    if rule.valid_to is not None and at >= rule.valid_to:
        return False
    if rule.when is not None and not rule.when(facts.ctx):
        return False
    if rule.near is not None and not rule.near(facts.ctx):
        return False
    if rule.first_time == "purchase":
        return facts.state.purchases == 0
    if rule.first_time == "event_type":
        return facts.state.event_counts.get(facts.event.type, 0) == 0
    return True


def _matching_lines(rule: CompiledRule, facts: _Facts) -> list[_Line] | None:
    lines = facts.lines
    if rule.lines is not None:
        test = rule.lines
        lines = [line for line in lines if test(line.ctx)]
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
        return _Draft(_ZERO)
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
    after = award.base.discounts == "after"
    parts = [
        (ln.sku, ln.after, ln.after) if after else (ln.sku, ln.before, ln.before) for ln in lines
    ]
    whole_basket = rule.lines is None and rule.first_time != "category"
    if award.base.shipping == "include" and whole_basket and facts.shipping > 0:
        parts.append(("shipping", facts.shipping, facts.shipping))
    base = sum((p[1] for p in parts), _ZERO)
    if award.min_base is not None and base < award.min_base:
        return None
    factor = rate * award.multiplier
    return _Draft(base * factor, base, rate, award.multiplier, parts)


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
    extra = award.multiplier - 1
    parts = [(s.sku, s.base, Decimal(s.amount)) for s in shares]
    raw = sum((p[2] for p in parts), _ZERO) * extra
    return _Draft(raw, base, None, award.multiplier, parts)


def _fixed(award: FixedAward, lines: list[_Line]) -> _Draft:
    parts = [(line.sku, line.after, line.after) for line in lines]
    base = sum((p[1] for p in parts), _ZERO) if parts else None
    return _Draft(award.amount, base, None, Decimal(1), parts)


def _within_limits(rule: CompiledRule, facts: _Facts, draft: _Draft) -> _Fired | Skipped:
    state, amount = facts.state, draft.amount
    if not facts.periods:
        facts.periods.update(period_keys(facts.today))
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
    return _Fired(rule, _dump_amount(rule, amount), _award(rule, facts, draft))


def _dump_amount(rule: CompiledRule, amount: Decimal) -> Amount:
    return amount if rule.quantum != 1 else int(amount)


def _award(rule: CompiledRule, facts: _Facts, draft: _Draft) -> Award | None:
    if rule.award is None or rule.wallet is None or draft.amount <= 0:
        return None
    units = int(draft.amount / rule.quantum)
    shares = allocate(units, [p[2] for p in draft.parts])
    money = rule.quantum != 1
    lines = tuple(
        LineShare(sku, base, n * rule.quantum if money else n)
        for (sku, base, _), n in zip(draft.parts, shares, strict=True)
    )
    grant = rule.award
    return Award(
        rule_id=rule.id,
        rule_version=rule.version,
        wallet=rule.wallet,
        amount=_dump_amount(rule, draft.amount),
        base=draft.base,
        rate=draft.rate,
        multiplier=draft.multiplier,
        lines=lines,
        capped_by=tuple(draft.capped_by),
        tier=facts.state.tier if isinstance(grant, SpendAward) and grant.rate_by_tier else None,
        expires_at=_later(facts.now, grant.expires_in_days),
        available_at=_later(facts.now, grant.pending_days),
    )


def _later(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now + timedelta(days=days)


def allocate(units: int, weights: list[Decimal]) -> list[int]:
    """Split ``units`` in proportion to ``weights`` (largest remainder; ties by position).

    The parts always sum to ``units``; with no positive weight the split is even.
    """
    n = len(weights)
    if n <= 1:
        return [units] * n
    total = sum(weights, _ZERO)
    if total <= 0:
        weights, total = [Decimal(1)] * n, Decimal(n)
    exact = [w * units / total for w in weights]
    parts = [int(e) for e in exact]
    rest = units - sum(parts)
    order = sorted(range(n), key=lambda i: (parts[i] - exact[i], i))
    for i in order[:rest]:
        parts[i] += 1
    return parts


def _effects_of(fired: _Fired) -> list[Effect]:
    rule = fired.rule
    out: list[Effect] = [fired.award] if fired.award is not None else []
    for doc in rule.effects:
        if doc.kind == "voucher":
            out.append(IssueVoucher(rule.id, rule.version, doc.reward))
        elif doc.kind == "badge":
            out.append(AwardBadge(rule.id, rule.version, doc.badge))
        else:
            out.append(EmitEvent(rule.id, rule.version, doc.event, dict(doc.data)))
    return out
