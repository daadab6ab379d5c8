"""Batched email delivery on one SMTP connection (aiosmtpd in the test): claim, send, record;
a refused recipient, a dropped connection, a crash between send and record."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.messaging import batch
from fidelia.models.messaging import BouncedAddress
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.messaging.conftest import SmtpSink, apply, deliver, enrol, message, messaging_doc, send
from tests.messaging.test_bounces import cli_on  # noqa: F401  (fixture)


def _queued(api: Api, n: int) -> list[tuple[str, str]]:
    """``n`` members each with one queued welcome email: (address, message id)."""
    out = []
    for _ in range(n):
        email = unique_email()
        member = enrol(api, email=email, consents={"email": True})
        out.append((email, send(api, member, template="welcome")["id"]))
    return out


def _deliver(api: Api, database: Database, **kw: Any) -> batch.Outcome:
    return batch.deliver_due(
        database, programme_id=uuid.UUID(str(api.programme.id)), limit=50, **kw
    )


def test_a_batch_goes_out_on_one_connection_and_the_jobs_send_nothing_again(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    queued = _queued(api, 5)
    outcome = _deliver(api, database)
    assert (outcome.claimed, outcome.sent) == (5, 5)
    assert len(sink.received) == 5
    assert len(set(sink.sessions)) == 1  # one connection for the batch
    assert sorted(r[0] for r, _ in sink.received) == sorted(e for e, _ in queued)
    for _, message_id in queued:
        got = message(api, message_id)
        assert (got["status"], got["attempts"]) == ("sent", 1)
        assert [s["status"] for s in got["log"]] == ["queued", "sent"]
    deliver(database)  # the per-message jobs find them sent
    assert _deliver(api, database).claimed == 0
    assert len(sink.received) == 5


def test_a_refused_recipient_is_that_message_s_outcome_only(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    queued = _queued(api, 4)
    dead, busy = queued[1][0], queued[2][0]
    sink.refuse_rcpt = {dead: "550 5.1.1 no such user", busy: "450 4.2.1 try again later"}
    outcome = _deliver(api, database)
    assert (outcome.sent, outcome.bounced, outcome.retried) == (2, 1, 1)
    assert len(set(sink.sessions)) == 1
    bounced = message(api, queued[1][1])
    assert (bounced["status"], bounced["reason"]) == ("bounced", "550 5.1.1 no such user")
    assert count_rows(
        database, BouncedAddress, BouncedAddress.programme_id == api.programme.id,
        BouncedAddress.address == dead,
    ) == 1  # fmt: skip
    retried = message(api, queued[2][1])
    assert (retried["status"], retried["reason"]) == ("queued", "450 4.2.1 try again later")
    sink.refuse_rcpt = {}
    assert _deliver(api, database).sent == 1  # backoff 0 in the test document
    assert message(api, queued[2][1])["attempts"] == 2
    assert len(sink.received) == 3


def test_a_connection_dropped_mid_batch_is_reopened_and_nothing_is_sent_twice(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    queued = _queued(api, 6)
    sink.drop_at = 3  # the server hangs up when the 4th message starts
    outcome = _deliver(api, database)
    assert (outcome.sent, outcome.retried, outcome.failed) == (6, 0, 0)
    assert len(sink.received) == 6
    assert len(set(sink.sessions)) == 2
    ids = [mime["X-Fidelia-Message"] for _, mime in sink.received]
    assert sorted(ids) == sorted(m for _, m in queued)


def test_a_crash_between_send_and_record_resends_only_after_the_lease(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    queued = _queued(api, 2)
    programme_id = uuid.UUID(str(api.programme.id))
    claimed, _ = batch.claim(database, limit=50, now=utcnow(), programme_id=programme_id)
    batch.send(claimed)  # the worker dies here: the server has them, the database does not
    assert len(sink.received) == 2
    assert {message(api, m)["status"] for _, m in queued} == {"sending"}
    deliver(database)  # the per-message jobs leave a claimed message alone
    assert _deliver(api, database).claimed == 0  # within the lease: not claimed again
    assert len(sink.received) == 2
    later = _deliver(api, database, now=utcnow() + batch.LEASE + timedelta(seconds=1))
    assert later.sent == 2  # at least once: the documented duplicate window
    assert len(sink.received) == 4
    assert {message(api, m)["attempts"] for _, m in queued} == {2}


def test_the_cli_delivers_the_due_emails_in_batches(
    api: Api,
    database: Database,
    smtp_sink: tuple[SmtpSink, int],
    cli_on: CliRunner,  # noqa: F811
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    queued = _queued(api, 3)
    args = ["messaging", "deliver", "-p", api.programme.slug, "--limit", "2"]
    result = cli_on.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert '"sent": 3' in result.output
    assert len(sink.received) == 3
    assert {message(api, m)["status"] for _, m in queued} == {"sent"}
