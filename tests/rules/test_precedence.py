"""Precedence: priority, exclusive groups (best / first), stacking, and order independence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fidelia.rules.demo import demo_document
from fidelia.rules.engine import compile_programme
from fidelia.rules.state import EngineEvent, MemberState, ProgrammeCounters, apply_event
from tests.rules.support import event, line, points, programme, purchase, run


def fixed(rule_id: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "name": rule_id, "award": {"kind": "fixed", "amount": amount}, **extra}


def test_stackable_rules_all_apply() -> None:
    prog = programme(fixed("a", 10), fixed("b", 20))

    assert points(run(prog, purchase(line("x", "1")))) == 30


def test_best_of_an_exclusive_group_wins() -> None:
    prog = programme(
        fixed("small", 10, exclusive_group="promo", priority=9),
        fixed("large", 50, exclusive_group="promo"),
        fixed("other", 1),
        groups={"promo": "best"},
    )
    result = run(prog, purchase(line("x", "1")))

    assert {a.rule_id: a.amount for a in result.awards} == {"large": 50, "other": 1}
    assert result.skipped[0].rule_id == "small"
    assert "large applies" in result.skipped[0].reason


def test_first_of_an_exclusive_group_is_the_highest_priority() -> None:
    prog = programme(
        fixed("small", 10, exclusive_group="promo", priority=9),
        fixed("large", 50, exclusive_group="promo"),
        groups={"promo": "first"},
    )

    assert [a.rule_id for a in run(prog, purchase(line("x", "1"))).awards] == ["small"]


def test_first_applicable_rule_wins_when_the_first_does_not_apply() -> None:
    web_only = {"field": "event.channel", "op": "eq", "value": "web"}
    prog = programme(
        fixed("web", 10, exclusive_group="g", priority=9, when=web_only),
        fixed("any", 5, exclusive_group="g"),
        groups={"g": "first"},
    )

    assert [a.rule_id for a in run(prog, purchase(line("x", "1"))).awards] == ["any"]


def test_ties_are_broken_by_rule_id_never_by_position() -> None:
    for order in (["b-rule", "a-rule"], ["a-rule", "b-rule"]):
        rules = [fixed(rule_id, 10, exclusive_group="g") for rule_id in order]
        for strategy in ("best", "first"):
            prog = programme(*rules, groups={"g": strategy})
            awards = run(prog, purchase(line("x", "1"))).awards
            assert [a.rule_id for a in awards] == ["a-rule"]


def test_effects_come_in_precedence_order() -> None:
    prog = programme(fixed("zeta", 1, priority=5), fixed("alpha", 1), fixed("beta", 1, priority=5))

    assert [a.rule_id for a in run(prog, purchase(line("x", "1"))).awards] == [
        "beta",
        "zeta",
        "alpha",
    ]


# -- property: the order of rules in the document never changes the outcome ---------------------

DEMO = demo_document()
STREAM: list[EngineEvent] = [
    purchase(
        line("cd", "35", category="music"),
        line("bk", "12", category="books"),
        at=datetime(2024, 3, 5, 17, 15, tzinfo=UTC),
        channel="web",
    ),
    purchase(line("cd", "80", qty="4", category="music"), at=datetime(2024, 3, 6, 11, tzinfo=UTC)),
    event("review", datetime(2024, 3, 6, 12, tzinfo=UTC), rating=5, text_length=80),
    event("check_in", datetime(2024, 3, 7, 9, tzinfo=UTC), lat=48.8606, lon=2.3376),
    purchase(line("cd", "150", category="music"), at=datetime(2024, 3, 8, 17, 30, tzinfo=UTC)),
    purchase(line("dvd", "90", category="video"), at=datetime(2024, 3, 9, 10, tzinfo=UTC)),
]


TIES = [fixed(f"tie-{i}", 7, exclusive_group="ties") for i in "cab"]
RULES = [*DEMO["rules"], *TIES]


def replay(doc: dict[str, Any], rules: list[dict[str, Any]], tier: str | None) -> Any:
    prog = compile_programme({**doc, "rules": rules})
    state = MemberState(tier=tier, attributes={"birth_date": "1980-03-02"})
    counters, seen = ProgrammeCounters(), []
    for ev in STREAM:
        result = run(prog, ev, state, counters)
        seen.append(result.as_dict())
        state = apply_event(state, ev, result, prog)
    return seen


@settings(max_examples=30, deadline=None)
@given(
    order=st.permutations(range(len(RULES))),
    tier=st.sampled_from([None, "bronze", "silver"]),
    strategy=st.sampled_from(["best", "first"]),
)
def test_rule_order_in_the_document_does_not_change_the_outcome(
    order: list[int], tier: str | None, strategy: str
) -> None:
    # given the demo programme plus a group of three equal rules, and a shuffled copy of it
    doc = {**DEMO, "exclusive_groups": {**DEMO["exclusive_groups"], "ties": strategy}}
    shuffled = [RULES[i] for i in order]
    # when the same events are replayed under both
    original, permuted = replay(doc, RULES, tier), replay(doc, shuffled, tier)
    # then every effect, amount, explanation and skip reason is identical
    assert permuted == original
    assert any(e["effects"] for e in original)
