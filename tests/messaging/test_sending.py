"""Sending over real peers: email to an SMTP server, SMS to an HTTP gateway, webhook, inbox;
channel fallback, consent and reachability, content keys, retries and failures."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Job
from fidelia.models.messaging import Message
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.messaging.conftest import (
    Receiver,
    SmtpSink,
    apply,
    deliver,
    enrol,
    free_port,
    message,
    messaging_doc,
    send,
)


def test_an_email_is_rendered_and_handed_to_the_smtp_server(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    email = unique_email()
    member = enrol(api, email=email, consents={"email": True}, first_name="Laure")
    queued = send(api, member, template="welcome", content_key="welcome")
    assert (queued["status"], queued["channel"], queued["recipient"]) == ("queued", "email", email)
    assert sink.received == []  # sent after commit, by the worker
    deliver(database)
    assert len(sink.received) == 1
    rcpt, mime = sink.received[0]
    assert rcpt == [email]
    assert mime["Subject"] == "Bienvenue Laure !"
    assert mime["From"] == "Le Club <club@shop.example.org>"
    unsubscribe = mime["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://testserver/unsubscribe/")
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = (part.get_content() for part in mime.iter_parts())
    assert "Bonjour Laure, vous avez 0 points." in text
    assert unsubscribe.strip("<>") in text
    assert "<p>Bonjour Laure</p>" in html
    assert "https://shop.example.org/offre" not in html  # through the click redirect
    assert "http://testserver/t/c/" in html
    assert "http://testserver/t/o/" in html
    got = message(api, queued["id"])
    assert got["status"] == "sent"
    assert got["attempts"] == 1
    assert [step["status"] for step in got["log"]] == ["queued", "sent"]


def test_the_member_locale_picks_the_content_with_fallback(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    english = enrol(api, email=unique_email(), consents={"email": True}, locale="en-GB")
    german = enrol(api, email=unique_email(), consents={"email": True}, locale="de")
    send(api, english, template="welcome")
    send(api, german, template="welcome")  # no German: the programme's locale (fr)
    deliver(database)
    subjects = sorted(mime["Subject"] for _, mime in sink.received)
    assert subjects == ["Bienvenue Ana !", "Welcome Ana!"]


def test_without_email_consent_the_sms_goes_to_the_gateway_and_its_report_is_recorded(
    api: Api,
    database: Database,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, int],
) -> None:
    sink, smtp_port = smtp_sink
    receiver, http_port = http_receiver
    apply(api, messaging_doc(smtp_port, http_port))
    member = enrol(api, email=unique_email(), phone="+33612345678", consents={"sms": True})
    queued = send(api, member, template="welcome")
    assert (queued["channel"], queued["recipient"]) == ("sms", "+33612345678")
    deliver(database)
    assert sink.received == []
    path, headers, body = receiver.requests[-1]
    assert path == "/sms"
    assert headers["Authorization"] == "Bearer sms-token-123"
    assert body["to"] == "+33612345678"
    assert body["from"] == "CLUB"
    assert body["message"] == "Bienvenue Ana ! 0 pts"
    report = body["report"].removeprefix("http://testserver")
    assert message(api, queued["id"])["status"] == "sent"
    answered = api.client.post(report, json={"id": "gw-1", "status": "delivered"})
    assert answered.status_code == 200, answered.text
    got = message(api, queued["id"])
    assert got["status"] == "delivered"
    assert got["delivered_at"] is not None
    forged = api.client.post(report[:-3] + "AAA", json={"status": "delivered"})
    assert forged.status_code == 404


def test_a_member_no_channel_reaches_gets_a_message_not_sent_with_the_reason(
    api: Api,
    database: Database,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, int],
) -> None:
    apply(api, messaging_doc(smtp_sink[1], http_receiver[1]))
    member = enrol(api, email=unique_email(), consents={"email": False})
    queued = send(api, member, template="welcome")
    assert queued["status"] == "not_sent"
    assert queued["reason"] == "no reachable channel (email: no email consent; sms: no phone)"
    assert (
        count_rows(
            database, Job, Job.programme_id == api.programme.id, Job.kind == "messaging.deliver"
        )
        == 0
    )


def test_transactional_messages_need_no_marketing_consent(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    member = enrol(api, email=unique_email(), consents={"email": False})
    queued = send(api, member, template="welcome", kind="transactional")
    assert queued["status"] == "queued"
    deliver(database)
    assert len(sink.received) == 1
    assert sink.received[0][1]["List-Unsubscribe"] is None


def test_the_same_content_key_is_never_sent_twice_on_any_channel(
    api: Api,
    database: Database,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, int],
) -> None:
    apply(api, messaging_doc(smtp_sink[1], http_receiver[1]))
    member = enrol(
        api, email=unique_email(), phone="+33612345679", consents={"email": True, "sms": True}
    )
    first = send(api, member, template="welcome", content_key="cart-42")
    second = send(api, member, template="welcome", channels=["sms"], content_key="cart-42")
    assert first["status"] == "queued"
    assert second["status"] == "not_sent"
    assert "cart-42" in second["reason"]
    deliver(database)
    assert len(smtp_sink[0].received) == 1
    assert http_receiver[0].requests == []


def test_an_idempotency_key_answers_the_first_message(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    apply(api, messaging_doc(smtp_sink[1]))
    member = enrol(api, email=unique_email(), consents={"email": True})
    first = send(api, member, template="welcome", idempotency_key="k-1")
    again = send(api, member, template="welcome", idempotency_key="k-1")
    assert again["id"] == first["id"]
    deliver(database)
    assert len(smtp_sink[0].received) == 1


def test_a_failing_smtp_server_is_retried_then_the_message_fails_with_its_answer(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port, retry={"max_attempts": 3, "backoff_seconds": 0}))
    member = enrol(api, email=unique_email(), consents={"email": True})
    sink.refuse = "451 4.3.0 mailbox busy"
    queued = send(api, member, template="welcome")
    deliver(database)
    got = message(api, queued["id"])
    assert got["status"] == "failed"
    assert got["attempts"] == 3
    assert got["reason"] == "451 4.3.0 mailbox busy"
    assert [s["status"] for s in got["log"]] == ["queued", "retry", "retry", "failed"]


def test_a_permanent_refusal_fails_at_once(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    member = enrol(api, email=unique_email(), consents={"email": True})
    sink.refuse = "554 5.7.1 rejected"
    queued = send(api, member, template="welcome")
    deliver(database)
    got = message(api, queued["id"])
    assert (got["status"], got["attempts"], got["reason"]) == ("failed", 1, "554 5.7.1 rejected")


def test_a_gateway_error_is_retried_and_the_message_is_not_lost(
    api: Api, database: Database, http_receiver: tuple[Receiver, int]
) -> None:
    receiver, port = http_receiver
    apply(api, messaging_doc(None, port))
    member = enrol(api, phone="+33612345670", consents={"sms": True})
    receiver.answers = [(503, '{"error": "overloaded"}')]
    queued = send(api, member, template="welcome", channels=["sms"])
    deliver(database)
    got = message(api, queued["id"])
    assert got["status"] == "sent"
    assert got["attempts"] == 2
    assert got["log"][1]["detail"] == 'HTTP 503: {"error": "overloaded"}'
    assert len(receiver.requests) == 2


def test_a_webhook_is_posted_signed(
    api: Api, database: Database, http_receiver: tuple[Receiver, int]
) -> None:
    receiver, port = http_receiver
    apply(api, messaging_doc(None, port))
    member = enrol(api, email=unique_email())
    queued = send(api, member, template="welcome", channels=["webhook"], event={"cart": "C-1"})
    deliver(database)
    path, headers, body = receiver.requests[-1]
    assert path == "/hook"
    assert body["message_id"] == queued["id"]
    assert body["data"] == {"cart": "C-1"}
    raw = json.dumps(body, separators=(",", ":")).encode()
    expected = hmac.new(b"hook-secret", raw, hashlib.sha256).hexdigest()
    assert headers["X-Fidelia-Signature"] == f"sha256={expected}"
    assert message(api, queued["id"])["status"] == "delivered"


def test_the_inbox_lists_messages_and_marks_them_read(api: Api, database: Database) -> None:
    apply(api, messaging_doc())
    member = enrol(api, email=unique_email())
    for n in range(3):
        content = {"fr": {"subject": f"Info {n}", "text": "Bonjour {{ member.first_name }}"}}
        send(api, member, content=content, channels=["inbox"])
    deliver(database)
    page = api.get(f"/members/{member}/inbox?limit=2", scope="read").json()
    assert [i["subject"] for i in page["items"]] == ["Info 2", "Info 1"]
    rest = api.get(
        f"/members/{member}/inbox?limit=2&cursor={page['next_cursor']}", scope="read"
    ).json()
    assert [i["subject"] for i in rest["items"]] == ["Info 0"]
    assert rest["next_cursor"] is None
    first = page["items"][0]
    read = api.post(f"/members/{member}/inbox/{first['id']}/read", scope="integration")
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    unread = api.get(f"/members/{member}/inbox?unread=true", scope="read").json()
    assert len(unread["items"]) == 2
    assert message(api, first["id"])["status"] == "opened"
    other = enrol(api, email=unique_email())
    assert (
        api.post(f"/members/{other}/inbox/{first['id']}/read", scope="integration").status_code
        == 404
    )


def test_the_delivery_log_filters_and_pages(api: Api, database: Database) -> None:
    apply(api, messaging_doc())
    one, two = enrol(api, email=unique_email()), enrol(api, email=unique_email())
    content = {"fr": {"subject": "S", "text": "T"}}
    for member in (one, one, two):
        send(api, member, content=content, channels=["inbox"])
    by_member = api.get(f"/messages?member_id={one}", scope="read").json()["items"]
    assert len(by_member) == 2
    assert {m["member_id"] for m in by_member} == {one}
    deliver(database)
    delivered = api.get("/messages?status=delivered&channel=inbox&limit=2", scope="read").json()
    assert len(delivered["items"]) == 2
    assert delivered["next_cursor"]
    with database.transaction(readonly=True) as session:
        ids = session.scalars(
            select(Message.id).where(Message.programme_id == api.programme.id)
        ).all()
    assert len(ids) == 3


def test_an_unreachable_smtp_server_is_retried_then_failed_with_the_error(
    api: Api, database: Database
) -> None:
    apply(api, messaging_doc(free_port(), retry={"max_attempts": 2, "backoff_seconds": 0}))
    member = enrol(api, email=unique_email(), consents={"email": True})
    queued = send(api, member, template="welcome")
    deliver(database)
    got = message(api, queued["id"])
    assert (got["status"], got["attempts"]) == ("failed", 2)
    assert "ConnectionRefusedError" in got["reason"]


def test_a_secret_missing_from_the_environment_fails_the_message_and_says_which(
    api: Api,
    database: Database,
    http_receiver: tuple[Receiver, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, port = http_receiver
    apply(api, messaging_doc(None, port))
    monkeypatch.delenv("FIDELIA_TEST_SMS_TOKEN")
    member = enrol(api, phone="+33612345671", consents={"sms": True})
    queued = send(api, member, template="welcome", channels=["sms"])
    deliver(database)
    got = message(api, queued["id"])
    assert (got["status"], got["reason"]) == (
        "failed", "environment variable FIDELIA_TEST_SMS_TOKEN is not set"
    )  # fmt: skip
    assert receiver.requests == []
