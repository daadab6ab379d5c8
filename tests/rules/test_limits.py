"""Limits per member and period, programme budgets, first-N scarcity; the engine never writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fidelia.rules.engine import CompiledProgramme
from fidelia.rules.outcome import Evaluation
from fidelia.rules.state import (
    EngineEvent,
    MemberState,
    ProgrammeCounters,
    apply_event,
    record_counters,
)
from tests.rules.support import event, line, points, programme, purchase, run


def replay(
    prog: CompiledProgramme,
    events: list[EngineEvent],
    state: MemberState | None = None,
    counters: ProgrammeCounters | None = None,
) -> tuple[list[Evaluation], MemberState]:
    """Feed events one by one, keeping state and counters as the service layer would."""
    state, counters = state or MemberState(), counters or ProgrammeCounters()
    results = []
    for ev in events:
        result = run(prog, ev, state, counters)
        record_counters(counters, result, state)
        state = apply_event(state, ev, result, prog)
        results.append(result)
    return results, state


def review(day: int, month: int = 3) -> EngineEvent:
    return event("review", datetime(2024, month, day, 11, tzinfo=UTC))


REVIEW_3_A_MONTH: dict[str, Any] = {
    "id": "review",
    "event_type": "review",
    "award": {"kind": "fixed", "amount": 100},
    "limits": [{"per": "month", "max_awards": 3}],
}


def test_at_most_three_reviews_a_month_are_rewarded() -> None:
    prog = programme(REVIEW_3_A_MONTH)

    results, _ = replay(prog, [review(d) for d in (1, 2, 3, 4)] + [review(1, month=4)])

    assert [points(r) for r in results] == [100, 100, 100, 0, 100]
    assert results[3].skipped[0].reason == "limit 3 per month"


def test_evaluating_does_not_consume_the_limit() -> None:
    prog = programme({**REVIEW_3_A_MONTH, "limits": [{"per": "lifetime", "max_awards": 1}]})
    state = MemberState()

    assert points(run(prog, review(1), state)) == 100
    assert points(run(prog, review(2), state)) == 100  # nothing was written


def test_daily_limit_resets_at_local_midnight() -> None:
    prog = programme(
        {
            "id": "check",
            "event_type": "check_in",
            "award": {"kind": "fixed", "amount": 10},
            "limits": [{"per": "day", "max_awards": 1}],
        }
    )
    late = datetime(2024, 3, 5, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    events = [event("check_in", late), event("check_in", late + timedelta(hours=1))]

    results, _ = replay(prog, events)  # the second is 00:30 on 6 March in Paris

    assert [points(r) for r in results] == [10, 10]


def test_amount_limit_caps_the_last_award_and_says_so() -> None:
    prog = programme(
        {
            "id": "base",
            "award": {"kind": "spend", "rate": 1},
            "limits": [{"per": "week", "max_amount": 100}],
        }
    )
    week = [
        purchase(line("a", "60"), at=datetime(2024, 3, 4 + d, 11, tzinfo=UTC)) for d in (0, 1, 2)
    ]

    results, state = replay(prog, week)

    assert [points(r) for r in results] == [60, 40, 0]
    assert results[1].awards[0].capped_by == ("limit 100 per week",)
    assert state.used("base", "week:2024-W10") == (2, 100)


def test_programme_budget_is_shared_by_all_members() -> None:
    prog = programme(
        {
            "id": "promo",
            "event_type": "social_share",
            "budget": 250,
            "award": {"kind": "fixed", "amount": 100},
        }
    )
    counters = ProgrammeCounters()

    got = [
        points(replay(prog, [event("social_share")], counters=counters)[0][0])
        for _member in range(4)
    ]

    assert got == [100, 100, 50, 0]
    assert counters.issued["promo"] == 250


def test_only_the_first_n_members_are_rewarded() -> None:
    prog = programme(
        {
            "id": "newsletter",
            "event_type": "newsletter_signup",
            "first_n_members": 2,
            "award": {"kind": "fixed", "amount": 50},
        }
    )
    counters = ProgrammeCounters()
    states = []
    for _member in range(3):
        results, state = replay(prog, [event("newsletter_signup")], counters=counters)
        states.append(state)
        assert len(results) == 1
    assert [s.balances.get("points", 0) for s in states] == [50, 50, 0]
    assert counters.members["newsletter"] == 2
    # a member who already had it is not a new member of the N
    again = run(prog, event("newsletter_signup"), states[0], counters)
    assert points(again) == 50


def test_a_limit_that_leaves_less_than_a_point_skips_the_rule() -> None:
    prog = programme(
        {
            "id": "base",
            "award": {"kind": "spend", "rate": 1},
            "limits": [{"per": "week", "max_amount": "100.5"}],
        }
    )
    week = [
        purchase(line("a", a), at=datetime(2024, 3, 4 + d, 11, tzinfo=UTC))
        for d, a in enumerate(["60", "40", "10"])
    ]

    results, _ = replay(prog, week)

    assert [points(r) for r in results] == [60, 40, 0]
    assert results[2].effects == ()
    assert results[2].skipped[0].reason == "nothing left under limit 100.5 per week"
