"""Boosters: multipliers on what a spend rule gave, happy hours in the programme time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fidelia.rules.state import MemberState
from tests.rules.support import line, points, programme, purchase, run

BASE = {"id": "base", "award": {"kind": "spend", "rate": 1, "rate_by_tier": {"silver": 2}}}
HAPPY_HOUR_MUSIC = {
    "id": "happy-hour",
    "when": {
        "all": [
            {
                "field": "event.occurred_at",
                "op": "day_of_week",
                "value": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            },
            {"field": "event.occurred_at", "op": "hour_between", "value": [18, 20]},
        ]
    },
    "lines": {"field": "line.category", "op": "eq", "value": "music"},
    "award": {"kind": "booster", "of": "base", "multiplier": 2, "min_base": 30},
}


def test_happy_hour_doubles_music_points_in_local_time() -> None:
    # given base earning and a music happy hour 18:00-20:00 Paris time
    prog = programme(BASE, HAPPY_HOUR_MUSIC)
    # when a purchase happens at 18:30 in Paris (17:30 UTC in winter)
    result = run(
        prog,
        purchase(
            line("cd", "20", qty="2", category="music"),
            line("bk", "15"),
            at=datetime(2024, 1, 9, 17, 30, tzinfo=UTC),
        ),
    )
    # then the 40 € of music earn 40 more points; the book line is not boosted
    boost = next(a for a in result.awards if a.rule_id == "happy-hour")
    assert boost.amount == 40
    assert boost.multiplier == 2
    assert [(s.sku, s.amount) for s in boost.lines] == [("cd", 40)]
    assert points(result) == 55 + 40


def test_happy_hour_follows_the_dst_change_in_paris() -> None:
    prog = programme(BASE, HAPPY_HOUR_MUSIC)
    music = (line("cd", "40", category="music"),)
    # 16:30 UTC is 17:30 in Paris on 30 March (CET) but 18:30 on 31 March (CEST)
    before = run(prog, purchase(*music, at=datetime(2024, 3, 30, 16, 30, tzinfo=UTC)))
    after = run(prog, purchase(*music, at=datetime(2024, 3, 31, 16, 30, tzinfo=UTC)))

    assert points(before, "happy-hour") == 0
    assert points(after, "happy-hour") == 40


def test_booster_minimum_applies_to_matching_lines_only() -> None:
    prog = programme(BASE, HAPPY_HOUR_MUSIC)
    evening = datetime(2024, 1, 9, 18, 0, tzinfo=UTC)  # 19:00 Paris
    small = purchase(line("cd", "29.99", category="music"), line("tv", "500"), at=evening)

    assert points(run(prog, small), "happy-hour") == 0


def test_booster_multiplies_tier_points() -> None:
    prog = programme(
        BASE, {"id": "double", "award": {"kind": "booster", "of": "base", "multiplier": 2}}
    )
    result = run(prog, purchase(line("a", "10")), MemberState(tier="silver"))

    assert points(result, "base") == 20
    assert points(result, "double") == 20


def test_birthday_month_doubles_points() -> None:
    prog = programme(
        BASE,
        {
            "id": "birthday",
            "when": {"field": "member.is_birthday_month", "op": "eq", "value": True},
            "award": {"kind": "booster", "of": "base", "multiplier": 2},
        },
    )
    march = MemberState(attributes={"birth_date": "1990-03-17"})
    june = MemberState(attributes={"birth_date": "1990-06-17"})

    assert points(run(prog, purchase(line("a", "10")), march)) == 20
    assert points(run(prog, purchase(line("a", "10")), june)) == 10


def test_no_booster_without_its_base_award() -> None:
    prog = programme(
        {**BASE, "when": {"field": "event.channel", "op": "eq", "value": "web"}},
        {"id": "x3", "award": {"kind": "booster", "of": "base", "multiplier": 3}},
    )

    assert run(prog, purchase(line("a", "10"))).effects == ()


def test_booster_on_cashback_stays_money() -> None:
    prog = programme(
        {"id": "cb", "award": {"kind": "spend", "wallet": "cashback", "rate": "0.01"}},
        {
            "id": "cb-boost",
            "award": {"kind": "booster", "of": "cb", "multiplier": 1.5, "rounding": "half_up"},
        },
    )
    result = run(prog, purchase(line("a", "123.45")))

    assert [a.amount for a in result.awards] == [Decimal("1.23"), Decimal("0.62")]  # 0.615
    assert {a.wallet for a in result.awards} == {"cashback"}
