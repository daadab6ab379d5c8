"""Tiers: upgrade with the event that crosses the threshold, tier-dependent earning,
requalification at the period end (downgrade policies, grace), manual assignment, returns,
progress and history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.models import MemberState, MemberTier
from tests.fixtures.events import return_of
from tests.fixtures.factories import Api
from tests.tiers.conftest import JAN, buy, document, enrol, requalify, send, tier_of

NEW_YEAR = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # 1 January 2026, 00:00 in Paris


def _history(api: Api, member_id: str) -> list[tuple[Any, Any, Any]]:
    rows = api.get(f"/members/{member_id}/tier/history", scope="read").json()
    return [(r["from_tier"], r["to_tier"], r["reason"]) for r in rows]


def test_the_event_crossing_a_threshold_upgrades_and_the_next_one_earns_at_the_new_rate(
    api: Api, database: Database
) -> None:
    api.put("/programme/document", json=document())
    member = enrol(api)

    crossing = buy(api, member, "320.00", JAN.replace(month=2))

    assert crossing["totals"] == {"points": 320, "status": 32}  # still the Bronze rate
    change = next(e for e in crossing["effects"] if e["kind"] == "tier")
    assert (change["from"], change["to"]) == ("bronze", "silver")
    assert buy(api, member, "10.00", JAN.replace(month=3))["totals"]["points"] == 20
    with database.transaction(readonly=True) as session:
        state = session.get(MemberState, uuid.UUID(member))
        assert state is not None
        assert state.state["tier"] == "silver"


def test_a_combination_any_reaches_gold_on_status_points_alone(api: Api) -> None:
    api.put("/programme/document", json=document())
    member = enrol(api)
    buy(api, member, "999.00", JAN.replace(month=2))  # 99 status points, 999 €: Silver
    assert tier_of(api, member)["tier"] == "silver"
    buy(api, member, "10.00", JAN.replace(month=3))  # 100 status points: Gold
    assert tier_of(api, member)["tier"] == "gold"


def test_progress_says_what_is_left_and_by_when(api: Api) -> None:
    api.put("/programme/document", json=document())
    member = enrol(api)
    buy(api, member, "120.00", datetime.now(UTC))

    progress = tier_of(api, member)

    assert progress["tier"] == "bronze"
    assert progress["window"] == "calendar_year"
    assert Decimal(progress["metric"]["spend"]) == 120
    assert progress["next"]["tier"] == "silver"
    assert Decimal(progress["next"]["missing"]["spend"]) == 180
    assert progress["next"]["by"] == progress["window_end"]
    assert progress["keep"] is None  # nothing to keep at the base level


def test_requalification_moves_one_level_down_for_a_member_who_did_not_requalify(
    api: Api,
) -> None:
    api.put("/programme/document", json=document())
    member = enrol(api)
    buy(api, member, "1200.00", JAN.replace(month=2))
    assert tier_of(api, member)["tier"] == "gold"

    report = requalify(api, NEW_YEAR)

    assert (report["reviewed"], report["downgraded"]) == (1, 0)  # 2025 qualified gold: kept
    report = requalify(api, NEW_YEAR.replace(year=2026))
    assert report["downgraded"] == 1
    assert tier_of(api, member)["tier"] == "silver"  # one level down, not to bronze
    assert _history(api, member)[-1] == ("gold", "silver", "requalify_down")


def test_recompute_policy_drops_to_the_earned_level(api: Api) -> None:
    api.put("/programme/document", json=document(downgrade="recompute"))
    member = enrol(api)
    buy(api, member, "1200.00", JAN.replace(month=2))
    buy(api, member, "50.00", JAN.replace(year=2026, month=3))

    requalify(api, NEW_YEAR.replace(year=2026))

    assert tier_of(api, member)["tier"] == "bronze"


def test_a_grace_period_keeps_the_tier_then_downgrades_unless_the_member_requalifies(
    api: Api,
) -> None:
    api.put("/programme/document", json=document(grace_days=30))
    kept, lapsed = enrol(api), enrol(api, JAN.replace(day=11))
    for member in (kept, lapsed):
        buy(api, member, "400.00", JAN.replace(month=2))
    review = NEW_YEAR.replace(year=2026)

    assert requalify(api, review)["in_grace"] == 2
    assert tier_of(api, kept)["keep"]["grace_until"] is not None
    buy(api, kept, "300.00", datetime(2027, 1, 15, tzinfo=UTC))  # requalifies during grace
    requalify(api, datetime(2027, 2, 1, tzinfo=UTC))

    assert tier_of(api, kept)["tier"] == "silver"
    assert tier_of(api, kept)["keep"]["grace_until"] is None
    assert tier_of(api, lapsed)["tier"] == "bronze"


def test_manual_assignment_of_an_invitation_only_level_ends_at_its_date(
    api: Api, database: Database
) -> None:
    api.put("/programme/document", json=document())
    member = enrol(api)
    buy(api, member, "350.00", datetime.now(UTC))
    until = datetime(2030, 1, 1, tzinfo=UTC)

    assigned = api.put(
        f"/members/{member}/tier", json={"tier": "black", "until": until.isoformat()}
    )

    assert assigned.status_code == 200, assigned.text
    assert (assigned.json()["tier"], assigned.json()["source"]) == ("black", "manual")
    assert requalify(api, datetime(2029, 12, 31, tzinfo=UTC))["reviewed"] == 0
    requalify(api, until)
    assert tier_of(api, member)["source"] == "metric"
    with database.transaction(readonly=True) as session:
        row = session.get(MemberTier, uuid.UUID(member))
        assert row is not None
        assert row.tier == "bronze"
        state = session.get(MemberState, uuid.UUID(member))
        assert state is not None
        assert state.state["tier"] == "bronze"


def test_bad_manual_assignments_are_refused_and_change_nothing(api: Api) -> None:
    api.put("/programme/document", json=document())
    member = enrol(api)
    unknown = api.put(f"/members/{member}/tier", json={"tier": "platinum"})
    past = api.put(f"/members/{member}/tier", json={"tier": "gold", "until": "2000-01-01T00:00Z"})
    assert unknown.status_code == 422
    assert unknown.json()["fields"][0]["loc"][-1] == "tier"
    assert past.status_code == 422
    assert past.json()["fields"][0]["loc"][-1] == "until"
    assert tier_of(api, member)["tier"] == "bronze"
    assert _history(api, member) == [(None, "bronze", "joined")]


@pytest.mark.parametrize(("policy", "after"), [("recompute", "bronze"), ("keep", "silver")])
def test_a_return_after_an_upgrade_follows_the_programme_policy(
    api: Api, policy: str, after: str
) -> None:
    api.put("/programme/document", json=document(on_return=policy))
    member = enrol(api)
    buy(api, member, "100.00", JAN.replace(month=2), order="a")
    buy(api, member, "250.00", JAN.replace(month=3), order="b")
    assert tier_of(api, member)["tier"] == "silver"

    ret = send(api, return_of({"id": member}, "b", [{"sku": "sku", "quantity": 1}],
                              occurred_at=JAN.replace(month=4)))  # fmt: skip

    taken = {e["wallet"]: e["amount"] for e in ret["effects"] if e["kind"] == "reversal"}
    assert taken == {"points": "250", "status": "25"}
    assert tier_of(api, member)["tier"] == after
    if policy == "keep":  # the next review judges the metric without the returned spend
        requalify(api, NEW_YEAR)
        assert tier_of(api, member)["tier"] == "bronze"


def test_a_document_with_incoherent_tiers_is_refused_with_the_path(api: Api) -> None:
    base_needs = document()
    base_needs["tiers"]["levels"][0]["requires"] = {"spend": "1"}
    unknown_rate = document()
    unknown_rate["rules"][0]["award"]["rate_by_tier"] = {"platinum": 5}
    no_wallet = document(status_wallet="stars")

    for doc, where in [
        (base_needs, "tiers"),
        (unknown_rate, "rules.0.award.rate_by_tier.platinum"),
        (no_wallet, "tiers.status_wallet"),
    ]:
        response = api.put("/programme/document", json=doc)
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith(where), response.json()
    assert api.get("/programme/document", scope="read").json()["version"] == 0
