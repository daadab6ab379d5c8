"""Seed scenarios 2 to 4 over a real SMTP server: the kibble stock alert (Mia(ou)m), the
abandoned cart (Zoro) and the overdue repurchase, each with its exit on purchase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fidelia.db import Database
from fidelia.scenarios.waits import next_local_time
from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api, unique_email
from tests.messaging.conftest import SmtpSink, apply, deliver, enrol, messaging_doc
from tests.scenarios.conftest import journeys, stats, tick


def _doc(port: int, templates: list[dict[str, Any]], scenario: dict[str, Any]) -> dict[str, Any]:
    doc = messaging_doc(port, templates=templates)
    doc["scenarios"] = {"definitions": [scenario]}
    return doc


def _post(api: Api, payload: dict[str, Any]) -> None:
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text


def _text(mime: Any) -> str:
    part = mime if not mime.is_multipart() else next(mime.iter_parts())
    return str(part.get_content()).replace("\r\n", "\n")


KIBBLE_TEMPLATE = {
    "code": "kibble-stock",
    "locales": {"fr": {
        "subject": "Votre stock de croquettes est bientôt vide",
        "text": "Bonjour {{ member.first_name }}, pensez à votre prochain sac. "
                "{{ links.unsubscribe }}",
    }},
}  # fmt: skip
KIBBLE = {
    "code": "kibble-stock-alert",
    "name": "Kibble stock alert",
    "entry": {"kind": "event", "event": "purchase",
              "condition": {"field": "event.categories", "op": "contains", "value": "kibble"}},
    "re_entry": "always",
    "holdout_percent": 0,
    "goal": {"event": "purchase", "within": {"days": 21},
             "condition": {"field": "event.categories", "op": "contains", "value": "kibble"}},
    "steps": [
        {"id": "xl", "kind": "branch",
         "condition": {"field": "event.skus", "op": "contains", "value": "kibble-xl"},
         "then": "three-weeks", "else": "two-weeks"},
        {"id": "two-weeks", "kind": "wait", "duration": {"days": 14}, "next": "alert"},
        {"id": "three-weeks", "kind": "wait", "duration": {"days": 21}},
        {"id": "alert", "kind": "action",
         "do": {"type": "message", "template": "kibble-stock", "channels": ["email"]}},
    ],
}  # fmt: skip


def test_kibble_stock_alert_after_two_weeks_three_for_an_xl_bag_none_if_bought_again(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port, [KIBBLE_TEMPLATE], KIBBLE))
    small, xl, again = unique_email(), unique_email(), unique_email()
    ids = {e: enrol(api, email=e, consents={"email": True}) for e in (small, xl, again)}
    now = datetime.now(UTC)
    for email, sku in ((small, "kibble-3kg"), (xl, "kibble-xl"), (again, "kibble-3kg")):
        _post(api, purchase({"id": ids[email]}, occurred_at=now,
                            lines=[line(sku, 1, "30.00", category="kibble")]))  # fmt: skip
    _post(api, purchase({"id": ids[again]}, occurred_at=now + timedelta(seconds=1),
                        lines=[line("toy", 1, "5.00", category="toys")]))  # fmt: skip
    assert tick(database, api.programme, now + timedelta(seconds=2)).entered == 3
    _post(api, purchase({"id": ids[again]}, occurred_at=now + timedelta(days=10),
                        lines=[line("kibble-3kg", 1, "30.00", category="kibble")]))  # fmt: skip
    tick(database, api.programme, now + timedelta(days=14, minutes=1))
    deliver(database, now + timedelta(days=14, minutes=1), api=api)
    assert [r[0] for r, _ in sink.received] == [small]
    assert sink.received[0][1]["Subject"] == "Votre stock de croquettes est bientôt vide"
    tick(database, api.programme, now + timedelta(days=21, minutes=1))
    deliver(database, now + timedelta(days=21, minutes=1), api=api)
    assert [r[0] for r, _ in sink.received] == [small, xl]
    statuses = {e: [j["status"] for j in journeys(api, ids[e])] for e in (small, xl, again)}
    # the repeat purchase converts the first journey and, being a kibble purchase, starts another
    assert statuses[small] == ["completed"]
    assert statuses[xl] == ["completed"]
    assert sorted(statuses[again]) == ["active", "converted"]


CART_TEMPLATE = {
    "code": "cart",
    "locales": {"fr": {
        "subject": "Votre panier vous attend",
        "text": "{% for l in event.get('properties', {}).get('lines', []) %}{{ l.get('name') }} "
                "x{{ l.get('quantity') }}\n{% endfor %}Livraison offerte. {{ links.unsubscribe }}",
    }},
}  # fmt: skip
CART = {
    "code": "abandoned-cart",
    "name": "Abandoned cart",
    "entry": {"kind": "event", "event": "cart_abandoned"},
    "re_entry": "always",
    "holdout_percent": 0,
    "goal": {"event": "purchase", "within": {"days": 2}},
    "steps": [
        {"id": "end-of-day", "kind": "wait", "until_time": "20:00"},
        {"id": "reminder", "kind": "action",
         "do": {"type": "message", "template": "cart", "channels": ["email"]}},
    ],
}  # fmt: skip


def test_abandoned_cart_email_with_its_lines_at_the_end_of_the_day_unless_bought(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port, [CART_TEMPLATE], CART))
    left, bought = unique_email(), unique_email()
    ids = {e: enrol(api, email=e, consents={"email": True}) for e in (left, bought)}
    now = datetime.now(UTC)
    cart = {"lines": [{"sku": "jean-1", "name": "Jean slim", "quantity": 1},
                      {"sku": "jupe-2", "name": "Jupe plissée", "quantity": 2}]}  # fmt: skip
    for email in (left, bought):
        _post(api, event("cart_abandoned", {"id": ids[email]}, cart, occurred_at=now))
    tick(database, api.programme, now + timedelta(seconds=1))
    _post(api, purchase({"id": ids[bought]}, occurred_at=now + timedelta(seconds=2)))
    tick(database, api.programme, now + timedelta(seconds=3))
    assert sink.received == []
    tz = ZoneInfo(api.programme.timezone)
    evening = next_local_time(now + timedelta(seconds=1), "20:00", None, tz)
    tick(database, api.programme, evening + timedelta(minutes=1))
    deliver(database, evening + timedelta(minutes=1), api=api)
    ((rcpt, mime),) = sink.received
    assert rcpt == [left]
    assert "Jean slim x1\nJupe plissée x2\nLivraison offerte." in _text(mime)
    assert journeys(api, ids[bought])[0]["status"] == "converted"
    assert stats(api, "abandoned-cart")["converted"] == 1


OVERDUE_TEMPLATE = {
    "code": "overdue",
    "locales": {"fr": {
        "subject": "Vous nous manquez, {{ member.first_name }}",
        "text": "{% if traits.promotion_sensitive %}-20 % sur votre prochain achat. {% endif %}"
                "{% if traits.top_category == 'denim' %}Nouveautés denim. {% endif %}"
                "{{ links.unsubscribe }}",
    }},
}  # fmt: skip
OVERDUE = {
    "code": "overdue-repurchase",
    "name": "Overdue repurchase",
    "entry": {"kind": "date", "trait": "expected_next_purchase", "days_before": -7, "at": "09:00"},
    "re_entry": "once_per_period",
    "period_days": 60,
    "holdout_percent": 0,
    "goal": {"event": "purchase", "within": {"days": 14}},
    "steps": [{"id": "nudge", "kind": "action",
               "do": {"type": "message", "template": "overdue", "channels": ["email"]}}],
}  # fmt: skip


def test_overdue_repurchase_a_week_after_the_usual_interval_with_personal_content(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port, [OVERDUE_TEMPLATE], OVERDUE))
    email = unique_email()
    member = enrol(api, email=email, consents={"email": True}, first_name="Inès")
    tz = ZoneInfo(api.programme.timezone)
    start = datetime.now(UTC) - timedelta(days=200)
    for days in (0, 90):  # every three months, denim
        _post(api, purchase({"id": member}, occurred_at=start + timedelta(days=days),
                            lines=[line("jean", 1, "60.00", category="denim")]))  # fmt: skip
    expected = (start + timedelta(days=180)).astimezone(tz).date()
    overdue_day = datetime.combine(expected + timedelta(days=7), datetime.min.time(), tz)
    assert tick(database, api.programme, overdue_day + timedelta(hours=8), exact=True).entered == 0
    at_nine = overdue_day + timedelta(hours=9, minutes=5)
    assert tick(database, api.programme, at_nine, exact=True).entered == 1
    assert (
        tick(database, api.programme, at_nine + timedelta(minutes=5), exact=True).entered == 0
    )  # once a day
    deliver(database, at_nine + timedelta(minutes=6), api=api)
    ((rcpt, mime),) = sink.received
    assert rcpt == [email]
    assert mime["Subject"] == "Vous nous manquez, Inès"
    assert "Nouveautés denim." in _text(mime)
    assert "-20 %" not in _text(mime)
