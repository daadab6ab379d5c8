"""Email bounces: a VERP return path per message, real RFC 3464 DSNs built here and handed in
through the API and the CLI (a Maildir), hard and soft outcomes, forged and malformed DSNs."""

from __future__ import annotations

import mailbox
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.models.messaging import BouncedAddress
from fidelia.models.webhooks import Notification
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.messaging.conftest import SmtpSink, apply, deliver, enrol, message, messaging_doc, send


def _doc(port: int) -> dict[str, Any]:
    doc = messaging_doc(port)
    doc["messaging"]["channels"]["email"]["bounce_address"] = "bounces@shop.example.org"
    return doc


def dsn(
    to: str,
    recipient: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <user> mailbox unknown",
    returned: dict[str, str] | None = None,
) -> bytes:
    """A delivery status notification as a receiving MTA (Postfix) writes it (RFC 3464)."""
    headers = "".join(f"{k}: {v}\r\n" for k, v in (returned or {"Subject": "Bienvenue"}).items())
    text = (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0"\r\n'
        "\r\n"
        "--B0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.example.net.\r\n"
        "\r\n"
        "--B0\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "Arrival-Date: Mon, 30 Nov 2026 20:00:00 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mx2.example.net\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        "--B0\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{headers}"
        "\r\n"
        "--B0--\r\n"
    )
    return text.encode()


def _sent_one(api: Api, database: Database, sink: SmtpSink) -> tuple[str, str, str]:
    email = unique_email()
    member = enrol(api, email=email, consents={"email": True})
    queued = send(api, member, template="welcome")
    deliver(database)
    return member, email, queued["id"]


def _post(api: Api, raw: bytes) -> Any:
    return api.post(
        "/messaging/bounces",
        content=raw,
        headers={"Content-Type": "message/rfc822"},
        scope="integration",
    )


def test_a_hard_bounce_to_the_verp_address_bounces_the_message_and_the_address(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port))
    member, email, message_id = _sent_one(api, database, sink)
    return_path = sink.senders[-1]
    local, domain = return_path.split("@")
    assert domain == "shop.example.org"
    assert local.startswith("bounces+")
    assert message_id.replace("-", "") not in return_path  # signed token, not the bare id

    answer = _post(api, dsn(return_path, email))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"hard": 1, "soft": 0, "logged": 0, "unmatched": 0}
    got = message(api, message_id)
    assert got["status"] == "bounced"
    assert got["reason"].startswith("5.1.1 550 5.1.1")
    assert [s["status"] for s in got["log"]][-1] == "bounced"
    assert count_rows(
        database, BouncedAddress, BouncedAddress.programme_id == api.programme.id,
        BouncedAddress.address == email,
    ) == 1  # fmt: skip
    with database.transaction(readonly=True) as session:
        notice = session.scalars(
            select(Notification).where(
                Notification.programme_id == api.programme.id,
                Notification.type == "message.bounced",
                Notification.member_id == uuid.UUID(member),
            )
        ).one()
        assert notice.payload["status"] == "5.1.1"
        assert notice.payload["address"] == email

    # The same DSN again changes nothing more; the address is unreachable from now on.
    assert _post(api, dsn(return_path, email)).json()["hard"] == 1
    traits = api.get(f"/members/{member}/traits", scope="read").json()
    reach = next(r for r in traits["reachability"] if r["channel"] == "email")
    assert (reach["address"], reach["consent"], reach["reachable"]) == (False, True, False)
    later = send(api, member, template="welcome", channels=["email"])
    assert later["status"] == "not_sent"
    assert "email address bounced" in later["reason"]
    assert len(sink.received) == 1


def test_a_message_queued_before_the_bounce_is_not_sent_to_the_dead_address(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port))
    email = unique_email()
    member = enrol(api, email=email, consents={"email": True})
    first = send(api, member, template="welcome")
    deliver(database)
    second = send(api, member, template="welcome")  # queued, not yet delivered
    assert _post(api, dsn(sink.senders[-1], email)).json()["hard"] == 1
    deliver(database)
    assert message(api, first["id"])["status"] == "bounced"
    got = message(api, second["id"])
    assert (got["status"], got["reason"]) == ("not_sent", "email address bounced")
    assert len(sink.received) == 1


def test_a_soft_bounce_sends_the_message_again(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port))
    _, email, message_id = _sent_one(api, database, sink)
    soft = dsn(sink.senders[-1], email, status="4.2.2", diagnostic="smtp; 452 4.2.2 mailbox full")
    assert _post(api, soft).json() == {"hard": 0, "soft": 1, "logged": 0, "unmatched": 0}
    assert message(api, message_id)["status"] == "queued"
    deliver(database)
    got = message(api, message_id)
    assert (got["status"], got["attempts"]) == ("sent", 2)
    assert len(sink.received) == 2
    delayed = dsn(sink.senders[-1], email, action="delayed", status="4.4.7")
    assert _post(api, delayed).json()["logged"] == 1
    assert message(api, message_id)["status"] == "sent"


def test_a_forged_token_matches_nothing_and_a_non_dsn_is_refused(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port))
    _, email, message_id = _sent_one(api, database, sink)
    local, domain = sink.senders[-1].split("@")
    forged = local[:-4] + ("AAAA" if not local.endswith("AAAA") else "BBBB") + "@" + domain
    assert _post(api, dsn(forged, email)).json()["unmatched"] == 1
    plain = EmailMessage()
    plain["To"] = sink.senders[-1]
    plain.set_content("hello")
    refused = _post(api, plain.as_bytes())
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["loc"][-1] == "dsn"
    assert message(api, message_id)["status"] == "sent"


def test_a_relay_without_verp_is_matched_by_the_returned_headers_of_this_programme_only(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))  # no bounce_address: the envelope sender is the From
    _, email, message_id = _sent_one(api, database, sink)
    assert sink.senders[-1] == "club@shop.example.org"
    raw = dsn("club@shop.example.org", email, returned={"X-Fidelia-Message": message_id})
    assert _post(api, raw).json()["hard"] == 1
    assert message(api, message_id)["status"] == "bounced"


@pytest.fixture
def cli_on(database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv(
        "FIDELIA_DATABASE_URL", database.engine.url.render_as_string(hide_password=False)
    )
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_the_cli_reads_bounces_from_a_maildir(
    api: Api,
    database: Database,
    smtp_sink: tuple[SmtpSink, int],
    cli_on: CliRunner,
    tmp_path: Path,
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port))
    _, email, message_id = _sent_one(api, database, sink)
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn(sink.senders[-1], email))
    box.add(b"Subject: not a bounce\n\nhello\n")
    result = cli_on.invoke(
        app, ["messaging", "bounces", str(tmp_path / "bounces"), "-p", api.programme.slug]
    )
    assert result.exit_code == 0, result.output
    assert '"hard": 1' in result.output
    assert '"skipped": 1' in result.output
    assert message(api, message_id)["status"] == "bounced"
