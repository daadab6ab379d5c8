"""How much a rule gives, and how the amount splits over the purchase lines.

Design note
-----------
A rule's amount is computed exactly with ``Decimal`` (base x rate x multiplier, or a
booster's share of another rule's line points, or a fixed amount), rounded once per award
with the rule's policy into whole points or cents, capped per event, and then allocated to
the lines it was computed on by largest remainder, so the line shares always sum to the award.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from fidelia.rules.compiler import CompiledRule
from fidelia.rules.facts import Draft, Facts, Fired, Line
from fidelia.rules.outcome import (
    Amount,
    Award,
    AwardBadge,
    Effect,
    EmitEvent,
    IssueVoucher,
    LineShare,
)
from fidelia.rules.schemas import BoosterAward, FixedAward, SpendAward

_ZERO, _ONE = Decimal(0), Decimal(1)


def draft_amount(
    rule: CompiledRule, facts: Facts, lines: list[Line], awarded: dict[str, Award]
) -> Draft | None:
    """The rule's amount for these lines, rounded and capped; None when it gives nothing."""
    award = rule.award
    if award is None:
        return Draft(_ZERO, None, None, _ONE, [])
    if isinstance(award, SpendAward):
        draft = _spend(rule, award, facts, lines)
    elif isinstance(award, BoosterAward):
        draft = _boost(rule, award, lines, awarded)
    else:
        draft = _fixed(rule, award, facts, lines)
    if draft is None:
        return None
    draft.amount = draft.amount.quantize(rule.quantum, rule.rounding)
    if award.cap is not None and draft.amount > award.cap:
        draft.amount = award.cap.quantize(rule.quantum, ROUND_FLOOR)
        draft.capped_by += (f"cap {award.cap} per event",)
    if draft.amount <= 0 and not rule.effects:
        return None
    return draft


def _spend(rule: CompiledRule, award: SpendAward, facts: Facts, lines: list[Line]) -> Draft | None:
    tier = facts.state.tier
    rate = award.rate_by_tier.get(tier, award.rate) if tier is not None else award.rate
    if rate is None:
        return None
    after = award.base.discounts == "after"
    if after and rule.whole_basket:
        parts, base = facts.after_parts, facts.amount
    else:
        if after:
            parts = [(ln.sku, ln.after, ln.after) for ln in lines]
        else:
            parts = [(ln.sku, ln.before, ln.before) for ln in lines]
        base = sum((p[1] for p in parts), _ZERO)
    if award.base.shipping == "include" and rule.whole_basket and facts.shipping > 0:
        parts = [*parts, ("shipping", facts.shipping, facts.shipping)]
        base += facts.shipping
    if award.min_base is not None and base < award.min_base:
        return None
    return Draft(base * rate * award.multiplier, base, rate, award.multiplier, parts)


def _boost(
    rule: CompiledRule, award: BoosterAward, lines: list[Line], awarded: dict[str, Award]
) -> Draft | None:
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
    return Draft(raw, base, None, award.multiplier, parts)


def _fixed(rule: CompiledRule, award: FixedAward, facts: Facts, lines: list[Line]) -> Draft:
    if not lines:
        return Draft(award.amount, None, None, _ONE, [])
    if rule.whole_basket:
        return Draft(award.amount, facts.amount, None, _ONE, facts.after_parts)
    parts = [(line.sku, line.after, line.after) for line in lines]
    return Draft(award.amount, sum((p[1] for p in parts), _ZERO), None, _ONE, parts)


def finish(rule: CompiledRule, facts: Facts, draft: Draft) -> Fired:
    """The rule's outcome and its award: money stays a Decimal (quantised to 0.01), points
    become an int."""
    amount = draft.amount if rule.money else int(draft.amount)
    if rule.wallet is None or amount <= 0:
        return (rule, amount, None)
    return (rule, amount, _award(rule, facts, draft, amount))


def _award(rule: CompiledRule, facts: Facts, draft: Draft, amount: Amount) -> Award:
    parts, money = draft.parts, rule.money
    if len(parts) == 1:
        sku, base, _ = parts[0]
        lines: tuple[LineShare, ...] = (LineShare(sku, base, amount),)
    else:
        shares = allocate(int(amount * 100) if money else int(amount), [p[2] for p in parts])
        lines = tuple(
            [
                LineShare(sku, base, Decimal(n) / 100 if money else n)
                for (sku, base, _), n in zip(parts, shares, strict=True)
            ]
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
        draft.capped_by,
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
    if rest == 0:  # the shares were whole: no remainder to hand out
        return parts
    order = sorted(range(n), key=lambda i: (parts[i] - exact[i], i))
    for i in order[:rest]:
        parts[i] += 1
    return parts


def other_effects(rule: CompiledRule) -> list[Effect]:
    """The rule's non-wallet effects: vouchers, badges, domain events."""
    out: list[Effect] = []
    for doc in rule.effects:
        if doc.kind == "voucher":
            out.append(IssueVoucher(rule.id, rule.version, doc.reward))
        elif doc.kind == "badge":
            out.append(AwardBadge(rule.id, rule.version, doc.badge))
        else:
            out.append(EmitEvent(rule.id, rule.version, doc.event, dict(doc.data)))
    return out
