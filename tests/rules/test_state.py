"""Member state: incremental updates, windows, usage periods, JSON round trip."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fidelia.rules.state import RETENTION_DAYS, EngineEvent, MemberState, apply_event
from tests.rules.support import event, line, programme, purchase, run

PROG = programme(
    {"id": "base", "award": {"kind": "spend", "wallet": "points", "rate": 1}},
    {"id": "cb", "award": {"kind": "spend", "wallet": "cashback", "rate": 0.05}},
    {
        "id": "review",
        "event_type": "review",
        "award": {"kind": "fixed", "amount": 100},
        "limits": [{"per": "month", "max_awards": 3}, {"per": "day", "max_amount": 500}],
    },
)


def feed(state: MemberState, *events: EngineEvent) -> MemberState:
    for ev in events:
        state = apply_event(state, ev, run(PROG, ev, state), PROG)
    return state


def test_purchases_update_counters_categories_and_balances() -> None:
    # given a new member
    # when they buy twice on 5 March (Paris) and once on 7 March
    state = feed(
        MemberState(),
        purchase(line("cd", "20", category="music")),
        purchase(line("bk", "15.50", category="books")),
        purchase(line("cd2", "10", category="music"), at=datetime(2024, 3, 7, 11, tzinfo=UTC)),
    )
    # then counts, spend, daily buckets, categories and balances follow
    assert (state.purchases, state.spend) == (3, Decimal("45.50"))
    assert state.days == {"2024-03-05": (2, Decimal("35.50")), "2024-03-07": (1, Decimal(10))}
    assert state.categories == frozenset({"music", "books"})
    assert state.balances == {"points": 45, "cashback": Decimal("2.27")}  # 1.00+0.77+0.50
    assert state.purchases_since(date(2024, 3, 6)) == (1, Decimal(10))
    assert state.purchases_since(None) == (3, Decimal("45.50"))
    assert state.event_counts == {"purchase": 3}


def test_apply_event_is_pure() -> None:
    before = MemberState()
    ev = purchase(line("a", "10"))

    after = apply_event(before, ev, run(PROG, ev, before), PROG)

    assert before == MemberState()
    assert after.purchases == 1


def test_usage_keeps_the_current_period_of_each_limited_kind_only() -> None:
    days = [datetime(2024, 3, d, 11, tzinfo=UTC) for d in (5, 5, 6)]
    state = feed(MemberState(), *(event("review", at) for at in days))

    assert state.usage["review"] == {
        "lifetime": (3, 300),
        "month:2024-03": (3, 300),
        "day:2024-03-06": (1, 100),
    }
    assert state.used("review", "day:2024-03-05") == (0, 0)  # an older day is gone
    assert "base" not in state.usage  # no purchase yet


def test_a_late_event_counts_in_lifetime_but_not_in_a_past_period() -> None:
    state = feed(MemberState(), event("review", datetime(2024, 3, 6, 11, tzinfo=UTC)))
    late = event("review", datetime(2024, 3, 5, 11, tzinfo=UTC))

    state = feed(state, late)

    assert state.usage["review"]["lifetime"] == (2, 200)
    assert state.usage["review"]["day:2024-03-06"] == (1, 100)
    assert state.last_event_at == datetime(2024, 3, 6, 11, tzinfo=UTC)


def test_daily_buckets_older_than_the_retention_are_dropped() -> None:
    start = datetime(2023, 1, 1, 11, tzinfo=UTC)
    later = start + timedelta(days=RETENTION_DAYS + 5)

    state = feed(
        MemberState(), purchase(line("a", "10"), at=start), purchase(line("a", "5"), at=later)
    )

    assert list(state.days) == [later.date().isoformat()]
    assert (state.purchases, state.spend) == (2, Decimal(15))  # lifetime totals stay


def test_state_round_trips_through_json() -> None:
    state = feed(
        MemberState(tier="silver", attributes={"birth_date": "1990-03-17", "vip": True}),
        purchase(line("cd", "20.10", category="music")),
        event("review"),
    )

    text = json.dumps(state.to_json())

    assert MemberState.from_json(json.loads(text)) == state
    assert json.loads(text)["balances"] == {"points": 120, "cashback": "1.00"}


def test_from_intake_parses_purchase_properties() -> None:
    ev = EngineEvent.from_intake(
        type="purchase",
        occurred_at=datetime(2024, 3, 5, 11, tzinfo=UTC),
        properties={
            "order_id": "o",
            "total": "12.5",
            "lines": [{"sku": "a", "quantity": 1, "unit_price": "12.5"}],
        },
    )

    assert ev.purchase is not None
    assert ev.purchase.lines[0].amount == Decimal("12.5")
    assert EngineEvent.from_intake(type="review", occurred_at=ev.occurred_at).purchase is None
