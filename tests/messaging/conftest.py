"""Real peers for messaging tests: an SMTP server (aiosmtpd) and an HTTP receiver on 127.0.0.1
(the SMS gateway and webhooks), and a programme document with every channel configured."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage as MimeMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from fidelia.db import Database
from fidelia.jobs import service as jobs
from fidelia.messaging.channels import smtp as smtp_channel
from tests.fixtures.events import event
from tests.fixtures.factories import Api

BASE = "http://testserver"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """An aiosmtpd handler keeping what it receives; ``refuse`` answers every DATA instead."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], MimeMessage]] = []
        self.senders: list[str] = []  # the envelope sender (Return-Path) of each message
        self.sessions: list[int] = []  # the connection each message came on
        self.refuse: str | None = None
        self.refuse_rcpt: dict[str, str] = {}  # address: the answer to its RCPT TO
        self.drop_at: int | None = None  # drop the connection at the MAIL after n messages

    async def handle_MAIL(
        self, server: Any, _session: object, envelope: Any, address: str, options: Any
    ) -> str:
        if self.drop_at is not None and len(self.received) == self.drop_at:
            self.drop_at = None
            server.transport.close()
            return "421 closing the connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, _server: object, _session: object, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, _server: object, session: object, envelope: Any) -> str:
        if self.refuse is not None:
            return self.refuse
        self.sessions.append(id(session))
        self.received.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        )
        self.senders.append(envelope.mail_from)
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    smtp_channel.close_all()
    controller.stop()


class Receiver:
    """What the HTTP receiver got; ``answers`` are popped for each request (status, body),
    then 200 with ``{"id": "gw-<n>"}``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.answers: list[tuple[int, str]] = []
        self.lock = threading.Lock()


@pytest.fixture
def http_receiver() -> Iterator[tuple[Receiver, int]]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            with receiver.lock:
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                status, text = (
                    receiver.answers.pop(0)
                    if receiver.answers
                    else (200, json.dumps({"id": f"gw-{len(receiver.requests)}"}))
                )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver, server.server_address[1]
    server.shutdown()
    server.server_close()


WELCOME = {
    "code": "welcome",
    "locales": {
        "fr": {
            "subject": "Bienvenue {{ member.first_name }} !",
            "text": "Bonjour {{ member.first_name }}, vous avez {{ points.points }} points."
            " Désinscription : {{ links.unsubscribe }}",
            "html": "<html><body><p>Bonjour {{ member.first_name }}</p>"
            '<a href="https://shop.example.org/offre?c=1">Offre</a>'
            "{% if traits.promotion_sensitive %}<p>-20 %</p>{% endif %}</body></html>",
            "sms": "Bienvenue {{ member.first_name }} ! {{ points.points }} pts",
        },
        "en": {
            "subject": "Welcome {{ member.first_name }}!",
            "text": "Hello {{ member.first_name }}, you have {{ points.points }} points.",
            "sms": "Welcome {{ member.first_name }}!",
        },
    },
}
NPS = {
    "code": "nps",
    "locales": {
        "fr": {
            "subject": "Votre avis",
            "text": "{{ survey.question }}",
            "html": "<html><body>{% for c in survey.choices %}"
            '<a href="{{ c.url }}">{{ c.score }}</a>{% endfor %}</body></html>',
        }
    },
    "survey": {
        "code": "nps-visit",
        "scale": "nps",
        "question": {"fr": "Nous recommanderiez-vous ?"},
    },
}


def messaging_doc(
    smtp_port: int | None = None,
    http_port: int | None = None,
    *,
    pressure: dict[str, Any] | None = None,
    retry: dict[str, Any] | None = None,
    templates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    channels: dict[str, Any] = {"inbox": {}}
    if smtp_port is not None:
        channels["email"] = {
            "host": "127.0.0.1", "port": smtp_port, "security": "none",
            "from_address": "club@shop.example.org", "from_name": "Le Club",
        }  # fmt: skip
    if http_port is not None:
        channels["sms"] = {
            "url": f"http://127.0.0.1:{http_port}/sms",
            "token_env": "FIDELIA_TEST_SMS_TOKEN",
            "sender": "CLUB",
            "body": {"to": "{{ to }}", "message": "{{ text }}", "from": "{{ sender }}",
                     "report": "{{ callback_url }}"},
        }  # fmt: skip
        channels["webhook"] = {
            "url": f"http://127.0.0.1:{http_port}/hook",
            "secret_env": "FIDELIA_TEST_HOOK_SECRET",
        }
    fallback = [c for c in ("email", "sms") if c in channels]
    return {
        "rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}],
        "messaging": {
            "channels": channels,
            "fallback": fallback,
            "public_url": BASE,
            "pressure": pressure or {},
            "retry": retry or {"max_attempts": 3, "backoff_seconds": 0},
            "templates": templates if templates is not None else [WELCOME, NPS],
        },
    }


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIDELIA_TEST_SMS_TOKEN", "sms-token-123")
    monkeypatch.setenv("FIDELIA_TEST_HOOK_SECRET", "hook-secret")


def apply(api: Api, doc: dict[str, Any]) -> None:
    response = api.put("/programme/document", json=doc)
    assert response.status_code == 200, response.text


def enrol(
    api: Api,
    *,
    email: str | None = None,
    phone: str | None = None,
    consents: dict[str, bool] | None = None,
    locale: str = "fr",
    first_name: str = "Ana",
) -> str:
    ref: dict[str, Any] = {}
    if email:
        ref["email"] = email
    if phone:
        ref["phone"] = phone
    grants = [{"channel": c, "granted": g} for c, g in (consents or {}).items()]
    payload = event(
        "enrolment",
        ref,
        {"profile": {"first_name": first_name, "locale": locale}, "consents": grants},
        occurred_at=datetime.now(UTC),
    )
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    return str(response.json()["member_id"])


def send(api: Api, member_id: str, **body: Any) -> dict[str, Any]:
    response = api.post(
        "/messages", json={"member": {"id": member_id}, **body}, scope="integration"
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def deliver(database: Database, now: datetime | None = None, api: Api | None = None) -> int:
    """Run the due jobs as the worker would (with ``api``: only its programme's and those of
    no programme; a time days ahead would otherwise run every other test's programme's jobs
    in the shared database)."""
    programme_id = api.programme.id if api is not None else None
    return jobs.run_due(database, now=now, programme_id=programme_id)


def message(api: Api, message_id: str) -> dict[str, Any]:
    response = api.get(f"/messages/{message_id}", scope="read")
    assert response.status_code == 200, response.text
    return dict(response.json())
