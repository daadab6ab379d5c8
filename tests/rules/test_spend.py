"""Spend-based earning: rates, tiers, bases, rounding, line conditions, explanations."""

from __future__ import annotations

from decimal import Decimal

from fidelia.rules.state import MemberState
from tests.rules.support import line, points, programme, purchase, run

ONE_EURO_ONE_POINT = {
    "id": "base",
    "award": {"kind": "spend", "rate": 1, "rate_by_tier": {"bronze": 1, "silver": 2}},
}


def test_one_euro_gives_one_point_rounded_down_per_award() -> None:
    # given 1 € = 1 pt and a basket of 10.99 + 5.50
    prog = programme(ONE_EURO_ONE_POINT)
    # when the member buys
    result = run(prog, purchase(line("a", "10.99"), line("b", "5.50")))
    # then 16.49 € gives 16 points (rounded once for the award, not per line)
    assert points(result) == 16


def test_silver_members_earn_two_points_per_euro() -> None:
    prog = programme(ONE_EURO_ONE_POINT)
    basket = purchase(line("a", "30.00"))

    assert points(run(prog, basket, MemberState(tier="bronze"))) == 30
    assert points(run(prog, basket, MemberState(tier="silver"))) == 60
    assert points(run(prog, basket, MemberState(tier="platinum"))) == 30  # default rate
    silver = run(prog, basket, MemberState(tier="silver")).awards[0]
    assert silver.tier == "silver"
    assert silver.rate == 2


def test_a_tier_table_without_default_rate_skips_other_tiers() -> None:
    prog = programme(
        {"id": "vip", "award": {"kind": "spend", "rate": None, "rate_by_tier": {"gold": 5}}}
    )

    assert points(run(prog, purchase(line("a", "10")), MemberState(tier="gold"))) == 50
    assert run(prog, purchase(line("a", "10")), MemberState(tier=None)).effects == ()


def test_rounding_policies() -> None:
    basket = purchase(line("a", "10.50"))
    for policy, expected in [("floor", 10), ("half_up", 11), ("ceil", 11)]:
        prog = programme({"id": "r", "award": {"kind": "spend", "rate": 1, "rounding": policy}})
        assert points(run(prog, basket)) == expected, policy
    low = purchase(line("a", "10.49"))
    prog = programme({"id": "r", "award": {"kind": "spend", "rate": 1, "rounding": "half_up"}})
    assert points(run(prog, low)) == 10


def test_base_after_discounts_excludes_shipping_unless_asked() -> None:
    basket = purchase(line("a", "50", discount="10"), shipping="5.90")
    after = programme({"id": "s", "award": {"kind": "spend"}})
    before = programme({"id": "s", "award": {"kind": "spend", "base": {"discounts": "before"}}})
    shipped = programme({"id": "s", "award": {"kind": "spend", "base": {"shipping": "include"}}})

    assert points(run(after, basket)) == 40
    assert points(run(before, basket)) == 50
    result = run(shipped, basket)
    assert points(result) == 45  # 45.90 floored
    assert [s.sku for s in result.awards[0].lines] == ["a", "shipping"]


def test_line_condition_earns_only_on_matching_lines_with_explanation() -> None:
    # given 3 points per € on the brand "acme"
    prog = programme(
        {
            "id": "acme-x3",
            "lines": {"field": "line.brand", "op": "eq", "value": "acme"},
            "award": {"kind": "spend", "rate": 3},
        }
    )
    # when a basket holds one acme line and one other
    basket = purchase(line("a1", "12.40", brand="acme", qty="2"), line("z", "99", brand="other"))
    award = run(prog, basket).awards[0]
    # then only the acme line earns, and the explanation says so
    assert award.amount == 74  # 24.80 x 3 = 74.4
    assert award.base == Decimal("24.80")
    assert award.rate == 3
    assert [(s.sku, s.base, s.amount) for s in award.lines] == [("a1", Decimal("24.80"), 74)]
    assert award.as_dict()["rule"] == {"id": "acme-x3", "version": 1}


def test_points_are_allocated_to_lines_and_sum_to_the_award() -> None:
    prog = programme({"id": "base", "award": {"kind": "spend", "rate": 1}})
    basket = purchase(line("a", "3.33"), line("b", "3.33"), line("c", "3.34"))

    award = run(prog, basket).awards[0]

    assert award.amount == 10
    assert sum(int(s.amount) for s in award.lines) == 10
    assert [s.amount for s in award.lines] == [3, 3, 4]


def test_cashback_is_money_quantised_to_cents() -> None:
    prog = programme(
        {
            "id": "cb",
            "award": {"kind": "spend", "wallet": "cashback", "rate": 0.02, "rounding": "half_up"},
        }
    )
    award = run(prog, purchase(line("a", "33.33"), line("b", "10.00"))).awards[0]

    assert award.amount == Decimal("0.87")  # 43.33 x 2 % = 0.8666
    assert isinstance(award.amount, Decimal)
    assert sum(s.amount for s in award.lines) == Decimal("0.87")
    assert award.as_dict()["amount"] == "0.87"


def test_per_event_cap_is_applied_and_explained() -> None:
    prog = programme(
        {"id": "cb", "award": {"kind": "spend", "wallet": "cashback", "rate": 0.1, "cap": 5}}
    )
    award = run(prog, purchase(line("a", "120"))).awards[0]

    assert award.amount == Decimal("5.00")
    assert award.capped_by == ("cap 5 per event",)


def test_minimum_basket_through_the_condition_language() -> None:
    prog = programme(
        {
            "id": "big",
            "when": {"field": "event.amount", "op": "gte", "value": 50},
            "award": {"kind": "fixed", "amount": 25},
        }
    )

    assert points(run(prog, purchase(line("a", "49.99")))) == 0
    assert points(run(prog, purchase(line("a", "25"), line("b", "25")))) == 25


def test_channel_and_store_filters() -> None:
    prog = programme(
        {
            "id": "shop",
            "when": {
                "all": [
                    {"field": "event.channel", "op": "eq", "value": "store"},
                    {"field": "event.store", "op": "in", "value": ["paris-1", "lyon-2"]},
                ]
            },
            "award": {"kind": "spend", "rate": 1},
        }
    )

    assert points(run(prog, purchase(line("a", "10"), store="paris-1"))) == 10
    assert points(run(prog, purchase(line("a", "10"), store="nice-9"))) == 0
    assert points(run(prog, purchase(line("a", "10"), channel="web", store="paris-1"))) == 0


def test_validity_dates_bound_a_rule() -> None:
    prog = programme(
        {
            "id": "promo",
            "valid_from": "2024-03-01T00:00:00+01:00",
            "valid_to": "2024-03-05T00:00:00+01:00",
            "award": {"kind": "spend", "rate": 1},
        }
    )

    assert points(run(prog, purchase(line("a", "10")))) == 0  # 5 March, noon: ended
    earlier = purchase(line("a", "10"), at=purchase(line("a", "1")).occurred_at.replace(day=4))
    assert points(run(prog, earlier)) == 10


def test_inactive_rules_do_nothing() -> None:
    prog = programme({"id": "off", "active": False, "award": {"kind": "spend", "rate": 1}})

    assert run(prog, purchase(line("a", "10"))).effects == ()
