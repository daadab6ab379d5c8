"""Seed scenario 1, the welcome pack (Mia(ou)m), over a real SMTP server and an HTTP SMS
gateway: a welcome email with content chosen by species affinity, SMS when email cannot reach
the member, a reminder when the email is not opened within 3 days, exit when the offer is used.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fidelia.db import Database
from tests.fixtures.events import purchase
from tests.fixtures.factories import Api, unique_email
from tests.messaging.conftest import (
    Receiver,
    SmtpSink,
    apply,
    deliver,
    enrol,
    messaging_doc,
)
from tests.scenarios.conftest import journeys, stats, tick

WELCOME = {
    "code": "welcome",
    "locales": {
        "fr": {
            "subject": "Bienvenue {{ member.first_name }} !",
            "text": "Bonjour {{ member.first_name }}, votre offre de bienvenue vous attend."
            "{% if member.attributes.get('species') == 'cat' %} Pour votre chat.{% endif %}"
            " Désinscription : {{ links.unsubscribe }}",
            "html": "<html><body><p>Bonjour {{ member.first_name }}</p>"
            '<a href="https://shop.example.org/bienvenue">Mon offre</a></body></html>',
            "sms": "Bienvenue {{ member.first_name }} ! Votre offre : shop.example.org/b",
        }
    },
}
REMINDER = {
    "code": "welcome-reminder",
    "locales": {
        "fr": {
            "subject": "Il n'est pas trop tard, {{ member.first_name }}",
            "text": "Votre offre de bienvenue vous attend toujours. {{ links.unsubscribe }}",
        }
    },
}
SCENARIO = {
    "code": "welcome-pack",
    "name": "Welcome pack",
    "entry": {"kind": "event", "event": "enrolment"},
    "holdout_percent": 0,
    "goal": {"event": "purchase", "within": {"days": 30}},
    "steps": [
        {"id": "welcome", "kind": "action",
         "do": {"type": "message", "template": "welcome", "channels": ["email", "sms"],
                "content_key": "welcome-offer"}},
        {"id": "three-days", "kind": "wait", "duration": {"days": 3}},
        {"id": "opened", "kind": "branch", "message": {"step": "welcome", "outcome": "opened"},
         "then": "done", "else": "reminder"},
        {"id": "reminder", "kind": "action",
         "do": {"type": "message", "template": "welcome-reminder", "channels": ["email"],
                "content_key": "welcome-reminder"}},
        {"id": "done", "kind": "exit"},
    ],
}  # fmt: skip


def welcome_doc(smtp_port: int, http_port: int) -> dict[str, Any]:
    doc = messaging_doc(smtp_port, http_port, templates=[WELCOME, REMINDER])
    doc["scenarios"] = {"definitions": [SCENARIO]}
    return doc


def _pixel(mime: Any) -> str:
    html = next(p for p in mime.iter_parts() if p.get_content_type() == "text/html").get_content()
    found = re.search(r'src="http://testserver(/t/o/[^"]+)"', html)
    assert found
    return found.group(1)


def test_welcome_pack_email_sms_fallback_and_reminder_if_not_opened(
    api: Api,
    database: Database,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, int],
) -> None:
    sink, smtp_port = smtp_sink
    receiver, http_port = http_receiver
    apply(api, welcome_doc(smtp_port, http_port))
    opener_email, idle_email = unique_email(), unique_email()
    opener = enrol(api, email=opener_email, consents={"email": True}, first_name="Laure")
    idle = enrol(api, email=idle_email, consents={"email": True}, first_name="Paul")
    by_sms = enrol(api, phone="+33612345678", consents={"sms": True}, first_name="Zoé")
    api.patch(f"/members/{opener}", json={"attributes": {"species": "cat"}})
    now = datetime.now(UTC)

    first = tick(database, api.programme, now + timedelta(seconds=1))
    assert first.entered == 3
    deliver(database, now + timedelta(seconds=2), api=api)
    emails = {rcpt[0]: mime for rcpt, mime in sink.received}
    assert set(emails) == {opener_email, idle_email}
    assert emails[opener_email]["Subject"] == "Bienvenue Laure !"
    assert emails[opener_email]["List-Unsubscribe"].startswith("<http://testserver/unsubscribe/")
    sms = [body for path, _, body in receiver.requests if path == "/sms"]
    assert [(b["to"], b["message"]) for b in sms] == [
        ("+33612345678", "Bienvenue Zoé ! Votre offre : shop.example.org/b")
    ]
    assert api.client.get(_pixel(emails[opener_email])).status_code == 200  # Laure opens it

    # Nothing more before the three days are over; the reminder to Paul only after them.
    assert tick(database, api.programme, now + timedelta(days=2)).messages == 0
    later = tick(database, api.programme, now + timedelta(days=3, minutes=1))
    assert later.advanced == 3
    deliver(database, now + timedelta(days=3, minutes=2), api=api)
    reminders = [(r[0], m["Subject"]) for r, m in sink.received[2:]]
    assert reminders == [(idle_email, "Il n'est pas trop tard, Paul")]

    paths = {m: journeys(api, m)[0] for m in (opener, idle, by_sms)}
    assert {m: (j["status"], j["end_reason"]) for m, j in paths.items()} == {
        opener: ("completed", "exit step done"),
        idle: ("completed", "exit step done"),
        by_sms: ("completed", "exit step done"),  # reminder: no email address, not sent
    }
    figures = stats(api, "welcome-pack")
    assert figures["entered"] == 3
    assert figures["steps"]["opened"] == {"then": 1, "else": 2}
    assert figures["steps"]["reminder"] == {"queued": 1, "not_sent": 1}
    assert figures["messages"]["email"]["statuses"] == {"sent": 2, "opened": 1}
    assert figures["messages"]["email"]["opened"] == 1
    assert figures["messages"]["sms"]["messages"] == 1
    assert figures["lift"] is None  # no holdout in this scenario


def test_a_purchase_converts_and_ends_the_journey_at_once(
    api: Api,
    database: Database,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, int],
) -> None:
    sink, smtp_port = smtp_sink
    _, http_port = http_receiver
    apply(api, welcome_doc(smtp_port, http_port))
    email = unique_email()
    member = enrol(api, email=email, consents={"email": True})
    now = datetime.now(UTC)
    tick(database, api.programme, now + timedelta(seconds=1))
    order = purchase({"id": member}, occurred_at=now + timedelta(seconds=2))
    response = api.post("/events", json=order, scope="integration")
    assert response.status_code == 201, response.text
    tick(database, api.programme, now + timedelta(seconds=3))
    (journey,) = journeys(api, member)
    assert journey["status"] == "converted"
    assert journey["converted_at"] is not None
    tick(database, api.programme, now + timedelta(days=4))
    deliver(database, now + timedelta(days=4), api=api)
    assert [r for r, _ in sink.received] == [[email]]  # no reminder after the conversion
    assert stats(api, "welcome-pack")["converted"] == 1
