"""The demo data generator: deterministic, valid, chronological, coherent, and lifelike."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.demo import Dataset, GeneratorConfig, generate, write_jsonl
from fidelia.demo.catalogue import ARCHETYPES, STORES
from fidelia.demo.generator import dumps
from fidelia.events.schemas import BUILT_IN_MODELS, EventIn, Purchase, Return
from fidelia.members.identities import normalise_card, normalise_email, normalise_phone
from fidelia.rules.compiler import haversine_km
from fidelia.rules.demo import demo_rules

PARIS = ZoneInfo("Europe/Paris")
CONFIG = GeneratorConfig(members=400, months=12, seed=3)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(CONFIG)


def local(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"]).astimezone(PARIS)


@cache
def identity(kind: str, value: str) -> tuple[str, str]:
    """An identity normalised as intake does (raises if intake would refuse it)."""
    if kind == "card":
        return kind, normalise_card(value)
    if kind == "email":
        return kind, normalise_email(value)
    return kind, normalise_phone(value, region="FR")


def keys(ref: dict[str, Any]) -> list[tuple[str, str]]:
    """The normalised identities of a member reference."""
    return [identity(kind, ref[kind]) for kind in ("card", "email", "phone") if kind in ref]


@pytest.fixture(scope="module")
def owner(dataset: Dataset) -> list[int]:
    return owners(dataset)


def owners(dataset: Dataset) -> list[int]:
    """For each event, the index of the member it names, resolved as intake would: an
    enrolment with unknown identities creates a member; anything else must name a known one."""
    member_of: dict[tuple[str, str], int] = {}
    result = []
    for event in dataset.events:
        found = {member_of[k] for k in keys(event["member"]) if k in member_of}
        assert len(found) <= 1, f"{event['id']} names two members"
        if not found:
            assert event["type"] == "enrolment", f"{event['id']} names nobody enrolled yet"
            owner = len(set(member_of.values()))
            for k in keys(event["member"]):
                member_of[k] = owner
        else:
            owner = found.pop()
        result.append(owner)
    return result


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    small = GeneratorConfig(members=60, months=4, seed=11)
    first = [dumps(e) for e in generate(small)]
    again = [dumps(e) for e in generate(small)]
    other = [dumps(e) for e in generate(GeneratorConfig(members=60, months=4, seed=12))]
    assert first == again
    assert first != other
    assert len(first) > 200


def test_the_period_ends_on_the_given_day(dataset: Dataset) -> None:
    assert CONFIG.start == date(2025, 11, 1)
    assert GeneratorConfig(end=date(2026, 3, 30), months=1).start == date(2026, 2, 28)
    days = {local(e).date() for e in dataset.events}
    assert min(days) >= CONFIG.start
    assert max(days) <= CONFIG.end
    assert max(days) >= date(2026, 10, 1)


def test_every_event_validates_with_its_typed_properties(dataset: Dataset) -> None:
    for event in dataset.events:
        parsed = EventIn.model_validate(event)
        model = BUILT_IN_MODELS.get(parsed.type)
        if model is not None:
            model.model_validate(parsed.properties)
        keys(event["member"])  # emails and phones are valid identities
        assert event["channel"] in ("store", "web", "app")


def test_ids_are_unique_and_events_chronological(dataset: Dataset) -> None:
    ids = [e["id"] for e in dataset.events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"gen-{CONFIG.seed}-") for i in ids)
    instants = [(datetime.fromisoformat(e["occurred_at"]), e["id"]) for e in dataset.events]
    assert instants == sorted(instants)
    orders = [e["properties"]["order_id"] for e in dataset.events if e["type"] == "purchase"]
    assert len(set(orders)) == len(orders)


def test_every_member_enrols_before_anything_else(dataset: Dataset, owner: list[int]) -> None:
    # the fixture raises on an event before its member's enrolment
    assert len(set(owner)) == CONFIG.members
    first_type: dict[int, str] = {}
    for event, who in zip(dataset.events, owner, strict=True):
        first_type.setdefault(who, event["type"])
    assert set(first_type.values()) == {"enrolment"}


def test_duplicate_enrolments_name_an_existing_member(dataset: Dataset) -> None:
    enrolments = [e for e in dataset.events if e["type"] == "enrolment"]
    assert len(enrolments) == CONFIG.members + dataset.duplicates
    assert dataset.duplicates == round(CONFIG.members * CONFIG.duplicate_share)
    emails = {m.email for m in dataset.members if m.email}
    seen: set[str] = set()
    again = 0
    for event in enrolments:
        email = event["member"].get("email")
        if email is None:
            continue
        if email.lower() in seen:
            again += 1
            assert email != email.lower()  # typed in other capitals
            assert list(event["member"]) == ["email"]
        assert email.lower() in emails
        seen.add(email.lower())
    assert again == dataset.duplicates


def test_returns_only_give_back_what_the_same_member_bought(
    dataset: Dataset, owner: list[int]
) -> None:
    bought: dict[str, tuple[int, dict[str, Decimal], datetime]] = {}
    returned: dict[str, Counter[str]] = defaultdict(Counter)
    full = partial = 0
    for event, who in zip(dataset.events, owner, strict=True):
        when = datetime.fromisoformat(event["occurred_at"])
        if event["type"] == "purchase":
            purchase = Purchase.model_validate(event["properties"])
            total = sum((line.amount for line in purchase.lines), Decimal(0)) + purchase.shipping
            assert total == purchase.total
            bought[purchase.order_id] = (who, {ln.sku: ln.quantity for ln in purchase.lines}, when)
        elif event["type"] == "return":
            ret = Return.model_validate(event["properties"])
            buyer, lines, sold_at = bought[ret.order_id]
            assert buyer == who
            assert (when - sold_at).days >= 1
            for line in ret.lines:
                returned[ret.order_id][line.sku] += line.quantity  # type: ignore[assignment]
                assert returned[ret.order_id][line.sku] <= lines[line.sku]
            if returned[ret.order_id] == Counter(lines):
                full += 1
            else:
                partial += 1
    share = sum(1 for e in dataset.events if e["type"] == "return") / len(bought)
    assert 0.02 < share < 0.08
    assert full > 0
    assert partial > 0


def test_every_rule_of_the_demo_programme_has_events(dataset: Dataset) -> None:
    counts = dataset.counts()
    rules = demo_rules().rules
    for rule in rules:
        assert counts.get(rule.event_type, 0) > 0, rule.id
    events = dataset.events
    # the check-in rule's fence: some check-ins inside it, some too far
    fence = next(r.near for r in rules if r.near is not None)
    assert fence is not None
    distances = [
        min(
            haversine_km(e["properties"]["lat"], e["properties"]["lon"], p.lat, p.lon)
            for p in fence.places
        )
        for e in events
        if e["type"] == "check_in"
    ]
    assert sum(d <= fence.radius_km for d in distances) > len(distances) / 3
    assert any(d > fence.radius_km for d in distances)
    # reviews that qualify (rating 1-5, 50+ characters) and some that do not
    reviews = [e["properties"] for e in events if e["type"] == "review"]
    assert all(1 <= r["rating"] <= 5 for r in reviews)
    assert any(r["text_length"] >= 50 for r in reviews)
    assert any(r["text_length"] < 50 for r in reviews)
    # social shares on rewarded networks, and on one that is not
    networks = {e["properties"]["network"] for e in events if e["type"] == "social_share"}
    assert {"instagram", "facebook", "x", "tiktok"} <= networks
    assert "pinterest" in networks
    # the happy hour: 30 euros of music bought on a weekday between 18:00 and 20:00
    happy = 0
    for event in events:
        if event["type"] != "purchase":
            continue
        at = local(event)
        music = sum(
            Decimal(line["unit_price"]) * line["quantity"] - Decimal(line.get("discount", 0))
            for line in event["properties"]["lines"]
            if line["category"] == "music"
        )
        happy += at.weekday() < 5 and 18 <= at.hour < 20 and music >= 30
    assert happy > 0
    # birthdays for the birthday booster
    births = [
        e["properties"]["profile"].get("birth_date") for e in events if e["type"] == "enrolment"
    ]
    assert len({b[5:7] for b in births if b}) == 12


def test_app_download_once_and_before_any_check_in(dataset: Dataset, owner: list[int]) -> None:
    downloaded: dict[int, int] = Counter()
    for event, who in zip(dataset.events, owner, strict=True):
        if event["type"] == "app_download":
            downloaded[who] += 1
        elif event["type"] != "enrolment" and event["channel"] == "app":
            assert downloaded[who] == 1, event
    assert set(downloaded.values()) == {1}


def test_archetypes_differ_in_how_often_they_buy(dataset: Dataset) -> None:
    archetype_of = {}
    for member in dataset.members:
        for ref in ({"card": member.card}, {"email": member.email}, {"phone": member.phone}):
            if next(iter(ref.values())):
                archetype_of[keys(ref)[0]] = member.archetype.name
    purchases: Counter[str] = Counter()
    late: Counter[str] = Counter()
    for event in dataset.events:
        if event["type"] == "purchase":
            name = archetype_of[keys(event["member"])[0]]
            purchases[name] += 1
            late[name] += local(event).date() >= date(2026, 9, 1)
    members = dataset.archetypes()
    assert set(members) == {a.name for a in ARCHETYPES}
    rate = {name: purchases[name] / members[name] for name in members}
    assert rate["loyal"] > 2 * rate["regular"] > 2 * rate["occasional"]
    assert rate["one_off"] <= 1
    assert late["lapsed"] == 0  # lapsed members stopped buying before the last two months
    assert late["loyal"] > 0


def test_seasons_weeks_and_opening_hours_show(dataset: Dataset) -> None:
    months: Counter[str] = Counter()
    store_days: Counter[int] = Counter()
    for event in dataset.events:
        if event["type"] != "purchase":
            continue
        at = local(event)
        months[at.strftime("%Y-%m")] += 1
        if event["channel"] == "store":
            store_days[at.weekday()] += 1
            # open 10:00-19:30; who enrols at the till just before closing pays a bit later
            assert (10, 0) <= (at.hour, at.minute) < (19, 45)
            assert at.weekday() != 6 or at.month == 12
            assert (at.month, at.day) not in ((1, 1), (5, 1), (12, 25))
            assert event["store"] in {s.id for s in STORES}
    typical = statistics.median(months.values())
    assert months["2025-12"] > 1.4 * typical
    assert months["2025-12"] == max(months.values())
    assert months["2026-08"] < typical
    assert store_days[5] == max(store_days.values())  # Saturday
    discounted = Counter(
        local(e).month
        for e in dataset.events
        if e["type"] == "purchase" and any("discount" in line for line in e["properties"]["lines"])
    )
    assert discounted[1] > 2 * discounted[3]  # the January sales


def test_baskets_are_varied(dataset: Dataset) -> None:
    purchases = [e["properties"] for e in dataset.events if e["type"] == "purchase"]
    sizes = Counter(len(p["lines"]) for p in purchases)
    assert set(sizes) == {1, 2, 3, 4, 5, 6}
    categories = {line["category"] for p in purchases for line in p["lines"]}
    brands = {line["brand"] for p in purchases for line in p["lines"]}
    assert "music" in categories
    assert len(categories) == 8
    assert len(brands) >= 12
    totals = sorted(Decimal(p["total"]) for p in purchases)
    assert Decimal(15) < totals[len(totals) // 2] < Decimal(150)
    channels = Counter(e["channel"] for e in dataset.events if e["type"] == "purchase")
    assert min(channels["store"], channels["web"], channels["app"]) > 0
    assert channels["store"] > channels["web"] > channels["app"]


def test_consents_follow_the_opt_in_rates(dataset: Dataset) -> None:
    targets = {"email": 0.60, "sms": 0.35, "push": 0.25, "postal": 0.10}
    for channel, (granted, asked) in dataset.consents().items():
        assert asked > 50
        assert abs(granted / asked - targets[channel]) < 0.08, channel


def test_write_jsonl_writes_one_event_per_line(tmp_path: Path, dataset: Dataset) -> None:
    path = tmp_path / "out" / "events.jsonl"
    count = write_jsonl(dataset.events[:100], path)
    lines = path.read_text("utf-8").splitlines()
    assert count == len(lines) == 100
    assert [json.loads(line) for line in lines] == dataset.events[:100]


def test_cli_writes_the_file_and_prints_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    args = ["generate", "--members", "40", "--months", "3", "--seed", "5", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = out.read_text("utf-8").splitlines()
    expected = generate(GeneratorConfig(members=40, months=3, seed=5))
    assert lines == [dumps(e) for e in expected]
    assert "purchase" in result.output
    assert "enrolment" in result.output
    assert f"{len(lines):,} events" in result.output.replace("\n", " ")
    bad = CliRunner().invoke(app, ["generate", "--members", "0", "--out", str(out)])
    assert bad.exit_code != 0
