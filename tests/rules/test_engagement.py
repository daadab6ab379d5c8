"""Fixed awards for any event, first times, geofenced check-ins, milestones, other effects."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fidelia.rules.outcome import AwardBadge, EmitEvent, IssueVoucher
from fidelia.rules.state import MemberState, apply_event
from tests.rules.support import event, line, points, programme, purchase, run

REVIEW = {
    "id": "review",
    "event_type": "review",
    "when": {
        "all": [
            {"field": "event.properties.rating", "op": "between", "value": [1, 5]},
            {"field": "event.properties.text_length", "op": "gte", "value": 50},
        ]
    },
    "award": {"kind": "fixed", "amount": 100, "pending_days": 14, "expires_in_days": 365},
}
CHECK_IN = {
    "id": "check-in",
    "event_type": "check_in",
    "near": {"radius_km": 0.5, "places": [{"id": "rivoli", "lat": 48.8606, "lon": 2.3376}]},
    "award": {"kind": "fixed", "amount": 10},
}


def test_review_with_rating_and_text_earns_fixed_points_with_dates() -> None:
    prog = programme(REVIEW)

    good = run(prog, event("review", rating=4, text_length=120))
    short = run(prog, event("review", rating=4, text_length=10))

    award = good.awards[0]
    assert award.amount == 100
    assert award.available_at == datetime(2024, 3, 19, 11, tzinfo=UTC)
    assert award.expires_at == datetime(2024, 3, 5, 11, tzinfo=UTC) + timedelta(days=365)
    assert short.effects == ()


def test_rules_only_listen_to_their_event_type() -> None:
    prog = programme(REVIEW)

    assert run(prog, event("social_share", rating=5, text_length=500)).effects == ()


def test_check_in_counts_within_the_radius_only() -> None:
    prog = programme(CHECK_IN)

    at_door = run(prog, event("check_in", lat=48.8610, lon=2.3380))  # ~50 m
    across_town = run(prog, event("check_in", lat=48.8738, lon=2.2950))  # ~3.4 km
    no_position = run(prog, event("check_in"))

    assert points(at_door) == 10
    assert across_town.effects == ()
    assert no_position.effects == ()


def test_first_purchase_ever() -> None:
    prog = programme(
        {"id": "welcome", "first_time": "purchase", "award": {"kind": "fixed", "amount": 50}}
    )
    first = purchase(line("a", "10"))
    result = run(prog, first)
    state = apply_event(MemberState(), first, result, prog)

    assert points(result) == 50
    assert run(prog, purchase(line("b", "10")), state).effects == ()


def test_first_purchase_in_a_category_awards_only_for_new_categories() -> None:
    prog = programme(
        {"id": "new-cat", "first_time": "category", "award": {"kind": "fixed", "amount": 60}}
    )
    known = MemberState(categories=frozenset({"music"}))

    again = run(prog, purchase(line("cd", "10", category="music")), known)
    new = run(
        prog, purchase(line("cd", "10", category="music"), line("bk", "5", category="books")), known
    )

    assert again.effects == ()
    assert points(new) == 60
    assert [s.sku for s in new.awards[0].lines] == ["bk"]


def test_first_event_of_a_type_such_as_an_app_download() -> None:
    prog = programme(
        {
            "id": "app",
            "event_type": "app_download",
            "first_time": "event_type",
            "award": {"kind": "fixed", "amount": 100},
        }
    )

    assert points(run(prog, event("app_download"))) == 100
    again = MemberState(event_counts={"app_download": 1})
    assert run(prog, event("app_download"), again).effects == ()


MILESTONE = {
    "id": "five-and-300",
    "milestone": {"window": {"kind": "rolling_days", "days": 30}, "purchases": 5, "spend": 300},
    "award": {"kind": "fixed", "amount": 300},
    "effects": [
        {"kind": "voucher", "reward": "voucher-10"},
        {"kind": "badge", "badge": "loyal"},
        {"kind": "emit", "event": "member.milestone", "data": {"n": 5}},
    ],
}


def test_milestone_five_purchases_and_300_euros_gives_300_once() -> None:
    prog = programme(MILESTONE)
    state, results = MemberState(), []
    # when the member buys five times 70 € over five days
    for day in range(5):
        ev = purchase(line("a", "70"), at=datetime(2024, 3, 1 + day, 11, tzinfo=UTC))
        result = run(prog, ev, state)
        results.append(result)
        state = apply_event(state, ev, result, prog)
    # then the fifth purchase (350 € in total) reaches it, with its other effects
    assert [points(r) for r in results] == [0, 0, 0, 0, 300]
    kinds = [type(e) for e in results[4].effects]
    assert kinds[1:] == [IssueVoucher, AwardBadge, EmitEvent]
    # and a sixth purchase does not give it again
    sixth = purchase(line("a", "70"), at=datetime(2024, 3, 6, 11, tzinfo=UTC))
    assert run(prog, sixth, state).effects == ()


def test_milestone_window_forgets_old_purchases() -> None:
    prog = programme(MILESTONE)
    january = {
        (date(2024, 1, 1) + timedelta(days=i)).isoformat(): (1, Decimal(100)) for i in range(4)
    }
    state = MemberState(purchases=4, spend=Decimal(400), days=january)
    # four purchases in January are outside a 30-day window on 5 March
    assert run(prog, purchase(line("a", "70")), state).effects == ()
    # but count for a calendar-year window
    yearly = {
        **MILESTONE,
        "milestone": {
            **MILESTONE["milestone"],  # type: ignore[dict-item]
            "window": {"kind": "calendar_year"},
        },
    }
    assert points(run(programme(yearly), purchase(line("a", "70")), state)) == 300


def test_effects_only_rule_emits_without_an_award() -> None:
    prog = programme(
        {
            "id": "eco",
            "event_type": "recycling_drop_off",
            "effects": [{"kind": "badge", "badge": "eco-hero"}],
        }
    )

    result = run(prog, event("recycling_drop_off"))

    assert result.awards == ()
    assert result.effects == (AwardBadge("eco", 1, "eco-hero"),)
