"""The worker delivers email in batches (outside any job's transaction): two workers on
PostgreSQL send each message once; a batch reads its checks in one query each, whatever its
size, and refuses what one-by-one delivery refuses; a claim closes the message's first job."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import event, select

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.members.schemas import MemberCreate
from fidelia.messaging import batch, service
from fidelia.messaging.channels import smtp as smtp_channel
from fidelia.models import Job, Member, Programme
from fidelia.models.messaging import BouncedAddress, Message
from fidelia.programmes import documents
from fidelia.worker.runner import run_until
from tests.fixtures.factories import Api, make_programme, unique_email
from tests.messaging.conftest import SmtpSink, apply, enrol, free_port, message, messaging_doc, send


class SlowSink(SmtpSink):
    """Takes 5 ms per message, so two workers' batches overlap in time."""

    async def handle_DATA(self, server: Any, session: object, envelope: Any) -> str:
        await asyncio.sleep(0.005)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_sink() -> Iterator[tuple[SlowSink, int]]:
    sink = SlowSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    smtp_channel.close_all()
    controller.stop()


def _programme_with_members(db: Database, port: int, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    programme = make_programme(db)
    with db.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        documents.apply(session, programme=found, raw=messaging_doc(port), actor="test")
        ids = []
        for _ in range(n):
            data = MemberCreate.model_validate(
                {"email": unique_email(), "first_name": "Ana", "locale": "fr",
                 "consents": [{"channel": "email", "granted": True}]}
            )  # fmt: skip
            ids.append(members.insert_member(session, programme=found, data=data).id)
    return programme.id, ids


def _queue(db: Database, programme_id: uuid.UUID, ids: list[uuid.UUID], key: str) -> list[str]:
    with db.transaction() as session:
        programme = session.get(Programme, programme_id)
        assert programme is not None
        found = session.scalars(select(Member).where(Member.id.in_(ids))).all()
        requests = [
            service.Request(member=m, template="welcome", content=None, channels=["email"],
                            kind="marketing", content_key=None, event={}, expires_at=None,
                            idempotency_key=f"{key}:{m.id}", source="test")
            for m in found
        ]  # fmt: skip
        queued = service.queue_many(session, programme=programme, requests=requests, now=utcnow())
        assert {m.status for m in queued} == {"queued"}
        return [str(m.id) for m in queued]


@pytest.mark.postgres_only
@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_two_workers_send_each_email_once(
    fresh_database: Database, slow_sink: tuple[SlowSink, int]
) -> None:
    db = fresh_database
    sink, port = slow_sink
    programme_id, ids = _programme_with_members(db, port, 60)
    queued = _queue(db, programme_id, ids, "first")
    queued += _queue(db, programme_id, ids[:20], "second")  # 20 members get two messages
    stop = threading.Event()
    ran: list[int] = []

    def worker() -> None:
        ran.append(run_until(db, stop, poll_seconds=0.05, mail_batch=7))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(sink.received) < len(queued):
        stop.wait(0.1)
    stop.wait(0.5)  # a duplicate, if any, would arrive now
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    got = [mime["X-Fidelia-Message"] for _, mime in sink.received]
    assert sorted(got) == sorted(queued)  # every message, each once
    assert len(set(sink.sessions)) >= 2  # batches of 7: several connections
    with db.transaction(readonly=True) as session:
        rows = session.execute(select(Message.status, Message.attempts)).all()
        assert set(rows) == {("sent", 1)}
        states = set(session.scalars(select(Job.status).where(Job.kind == service.DELIVER_JOB)))
    assert states == {"done"}  # the first jobs closed by the claims, or left to the batches


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def _claim_statements(api: Api, database: Database, n: int) -> int:
    """How many statements claiming ``n`` due marketing emails costs."""
    for _ in range(n):
        send(api, enrol(api, email=unique_email(), consents={"email": True}), template="welcome")
    programme_id = uuid.UUID(str(api.programme.id))
    with _statements(database) as seen:
        claimed, skipped = batch.claim(database, limit=100, now=utcnow(), programme_id=programme_id)
    assert (len(claimed), skipped) == (n, 0)
    return len(seen)


def test_a_claim_reads_its_checks_once_per_batch_not_per_message(
    api: Api, database: Database, slow_sink: tuple[SlowSink, int], api_factory: Any
) -> None:
    _, port = slow_sink
    apply(api, messaging_doc(port, pressure={"caps": [{"max": 2, "hours": 168}]}))
    small = _claim_statements(api, database, 2)
    other = api_factory(make_programme(database))
    apply(other, messaging_doc(port, pressure={"caps": [{"max": 2, "hours": 168}]}))
    large = _claim_statements(other, database, 12)
    assert large == small  # six times the messages, the same statements


def test_a_batch_refuses_what_one_by_one_delivery_refuses(
    api: Api, database: Database, slow_sink: tuple[SlowSink, int]
) -> None:
    sink, port = slow_sink
    apply(api, messaging_doc(port, pressure={"caps": [{"max": 1, "hours": 24}]}))
    fine = enrol(api, email=unique_email(), consents={"email": True})
    withdrawn = enrol(api, email=unique_email(), consents={"email": True})
    dead = unique_email()
    bounced = enrol(api, email=dead, consents={"email": True})
    capped = enrol(api, email=unique_email(), consents={"email": True})
    expiring = enrol(api, email=unique_email(), consents={"email": True})
    programme_id = uuid.UUID(str(api.programme.id))
    send(api, capped, template="welcome")
    assert batch.deliver_due(database, programme_id=programme_id).sent == 1  # fills the cap
    ids = {
        name: send(api, member, template="welcome", **extra)["id"]
        for name, member, extra in (
            ("fine", fine, {}),
            ("withdrawn", withdrawn, {}),
            ("bounced", bounced, {}),
            ("capped", capped, {}),
            ("expiring", expiring, {"expires_at": (utcnow() + timedelta(minutes=1)).isoformat()}),
        )
    }
    response = api.post(
        f"/members/{withdrawn}/consents",
        json={"channel": "email", "granted": False},
        scope="integration",
    )
    assert response.status_code in (200, 201), response.text
    with database.transaction() as session:
        session.add(BouncedAddress(programme_id=programme_id, address=dead, reason="550 test",
                                   bounced_at=utcnow()))  # fmt: skip
    later = utcnow() + timedelta(minutes=2)  # past the expiry, within the cap's day
    outcome = batch.deliver_due(database, programme_id=programme_id, now=later)
    assert (outcome.claimed, outcome.sent, outcome.skipped) == (1, 1, 4)
    got = {name: message(api, i) for name, i in ids.items()}
    assert got["fine"]["status"] == "sent"
    assert (got["withdrawn"]["status"], got["withdrawn"]["reason"]) == (
        "not_sent",
        "email consent withdrawn",
    )
    assert (got["bounced"]["status"], got["bounced"]["reason"]) == (
        "not_sent",
        "email address bounced",
    )
    assert got["capped"]["status"] == "deferred"
    assert got["expiring"]["status"] == "expired"
    assert len(sink.received) == 2


def test_a_claim_closes_the_message_s_first_job(
    api: Api, database: Database, slow_sink: tuple[SlowSink, int]
) -> None:
    sink, port = slow_sink
    apply(api, messaging_doc(port))
    message_id = send(api, enrol(api, email=unique_email(), consents={"email": True}),
                      template="welcome")["id"]  # fmt: skip
    key = service.job_key(message_id)
    with database.transaction(readonly=True) as session:
        assert session.scalar(select(Job.status).where(Job.idempotency_key == key)) == "pending"
    batch.deliver_due(database, programme_id=uuid.UUID(str(api.programme.id)))
    with database.transaction(readonly=True) as session:
        assert session.scalar(select(Job.status).where(Job.idempotency_key == key)) == "done"
    assert [m["X-Fidelia-Message"] for _, m in sink.received] == [message_id]
