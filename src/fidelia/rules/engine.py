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
from datetime import datetime
from decimal import ROUND_FLOOR

from fidelia.rules.amounts import allocate, draft_amount, finish, other_effects
from fidelia.rules.compiler import (
    CompiledProgramme,
    CompiledRule,
    compile_programme,
    window_start,
)
from fidelia.rules.facts import Draft, Facts, Fired, Line, build_facts, line_context
from fidelia.rules.outcome import EMPTY, Award, Effect, Evaluation, Skipped
from fidelia.rules.schemas import Strategy
from fidelia.rules.state import EngineEvent, MemberState, ProgrammeCounters, period_keys

__all__ = ["CompiledProgramme", "allocate", "compile_programme", "evaluate"]


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
    facts = build_facts(event, state, rules, counters, now)
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
            effects.extend(other_effects(rule))
    return Evaluation(tuple(effects), tuple(skipped))


def _run_phase(
    rules: tuple[CompiledRule, ...],
    facts: Facts,
    awarded: dict[str, Award],
    strategies: Mapping[str, Strategy],
    skipped: list[Skipped],
) -> list[Fired]:
    fired: list[Fired] = []
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
    fired: list[Fired], strategies: Mapping[str, Strategy], skipped: list[Skipped]
) -> list[Fired]:
    winners: dict[str, Fired] = {}
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


def _apply(rule: CompiledRule, facts: Facts, awarded: dict[str, Award]) -> Fired | Skipped | None:
    if rule.when is not None and not rule.when(facts.ctx):
        return None
    if rule.simple:
        lines = facts.lines
    else:
        matched = _matching_lines(rule, facts) if _gates(rule, facts) else None
        if matched is None:
            return None
        lines = matched
    draft = draft_amount(rule, facts, lines, awarded)
    if draft is None:
        return None
    if rule.limited:
        return _within_limits(rule, facts, draft)
    return finish(rule, facts, draft)


def _gates(rule: CompiledRule, facts: Facts) -> bool:
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


def _matching_lines(rule: CompiledRule, facts: Facts) -> list[Line] | None:
    lines = facts.lines
    if rule.lines is not None:
        test = rule.lines
        lines = [
            ln for ln in lines if test(ln.ctx if ln.ctx is not None else line_context(facts, ln))
        ]
    if rule.first_time == "category":
        seen = facts.state.categories
        lines = [line for line in lines if line.category and line.category not in seen]
    elif rule.lines is None:
        return lines
    return lines or None


def _milestone_reached(rule: CompiledRule, facts: Facts) -> bool:
    goal = rule.milestone
    assert goal is not None
    if facts.state.used(rule.id)[0] > 0:  # reached once already
        return False
    count, spend = facts.state.purchases_since(window_start(goal.window, facts.today))
    count, spend = count + 1, spend + facts.amount  # this purchase counts
    if goal.purchases is not None and count < goal.purchases:
        return False
    return goal.spend is None or spend >= goal.spend


def _within_limits(rule: CompiledRule, facts: Facts, draft: Draft) -> Fired | Skipped:
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
                draft.capped_by += (f"limit {limit.max_amount} per {limit.per}",)
    if rule.budget is not None:
        room = rule.budget - facts.counters.issued.get(rule.id, 0)
        if room <= 0:
            return Skipped(rule.id, rule.version, "programme budget spent")
        if amount > room:
            amount = room.quantize(rule.quantum, ROUND_FLOOR)
            draft.capped_by += (f"programme budget {rule.budget}",)
    first_n = rule.first_n_members
    members = facts.counters.members.get(rule.id, 0)
    if first_n is not None and members >= first_n and state.used(rule.id)[0] == 0:
        return Skipped(rule.id, rule.version, f"only the first {first_n} members")
    if amount < rule.quantum and draft.amount >= rule.quantum and not rule.effects:
        return Skipped(rule.id, rule.version, "nothing left under " + ", ".join(draft.capped_by))
    draft.amount = amount
    return finish(rule, facts, draft)
