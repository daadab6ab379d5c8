"""Batched email delivery: claim due messages, send them on one SMTP connection, record the
outcomes set-based.

Three steps, each its own short transaction or none:

1. **Claim** (one transaction): due email messages (``queued``/``deferred``, ``due_at`` past,
   or ``sending`` claims older than the lease: a crashed worker's) are locked with ``FOR
   UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers), at most one per member (so
   contact pressure sees the previous one sent). Each passes the same checks as one-by-one
   delivery (expiry, consent, pressure, bounced address, content key) and becomes
   ``sending``, ``attempts`` + 1. Commit.
2. **Send** (no transaction): per SMTP server, one connection for the whole batch; a dropped
   connection is reopened once per message; a refused recipient is that message's outcome
   (5xx: hard bounce, 4xx: retry), the others go on.
3. **Record** (one transaction): ``sent`` by one executemany ``UPDATE ... WHERE status =
   'sending'``, the log rows by one ``INSERT``; refusals and retries one by one (few).

**Guarantee.** A message is handed to the server at most once per claim. If the worker dies
between the server's ``250`` and the record step, its messages stay ``sending`` until the
lease (``LEASE``, 10 minutes) runs out, then are claimed and sent again: at least once, with
the duplicates bounded by one batch of one crashed worker. A message the server refused, or
never got, is never reported ``sent``.
"""

from __future__ import annotations

import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from fidelia.db import Database
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.messaging import bounces, log, readiness
from fidelia.messaging.channels import Outgoing, Permanent, Sent, Transient
from fidelia.messaging.channels import smtp as smtp_channel
from fidelia.messaging.jobs import outgoing
from fidelia.messaging.schemas import MessagingSection, SmtpChannel
from fidelia.messaging.service import DELIVER_JOB, job_key, section_for
from fidelia.models import Base, Member, Programme
from fidelia.models.messaging import Message

LEASE = timedelta(minutes=10)
_MESSAGES = Base.metadata.tables["messages"]
_LOG = Base.metadata.tables["message_log"]
_JOBS = Base.metadata.tables["jobs"]


@dataclass
class _Claimed:
    message_id: uuid.UUID
    programme_id: uuid.UUID
    attempts: int
    max_attempts: int
    backoff_seconds: float
    config: SmtpChannel
    out: Outgoing


@dataclass
class Outcome:
    """How many of a batch were sent, bounced at RCPT, queued again or failed."""

    claimed: int = 0
    sent: int = 0
    bounced: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0  # closed or deferred by the checks
    detail: dict[str, str] = field(default_factory=dict)


def _due(now: datetime) -> list[Select[Message]]:
    """The claims whose lease ran out, then the due messages in due order (each read through
    its partial index, migration 0031)."""
    stale = select(Message).where(
        Message.channel == "email",
        Message.status == "sending",
        Message.updated_at <= now - LEASE,
    )
    waiting = select(Message).where(
        Message.channel == "email",
        Message.status.in_(("queued", "deferred")),
        Message.due_at <= now,
    )
    return [stale.order_by(Message.updated_at), waiting.order_by(Message.due_at, Message.id)]


def claim(
    database: Database, *, limit: int, now: datetime, programme_id: uuid.UUID | None = None
) -> tuple[list[_Claimed], int]:
    """Step 1: lock and check up to ``limit`` due email messages; those ready become
    ``sending``. Returns them (rendered for the wire) and how many the checks closed."""
    claimed: list[_Claimed] = []
    skipped = 0
    with database.transaction() as session:
        rows = _lock(session, limit=limit, now=now, programme_id=programme_id)
        programmes: dict[uuid.UUID, Programme] = {}
        sections: dict[uuid.UUID, MessagingSection | None] = {}
        for pid in sorted({m.programme_id for m in rows}):
            programme = session.get(Programme, pid)
            assert programme is not None
            programmes[pid], sections[pid] = programme, section_for(session, programme)
        facts = readiness.read_facts(session, rows, sections, now)
        for message in rows:
            section = sections[message.programme_id]
            checked = readiness.judge(
                session, section, programmes[message.programme_id], message, facts, now
            )
            if checked is None or checked.channels.email is None:
                skipped += 1
                continue
            claimed.append(
                _Claimed(
                    message_id=message.id,
                    programme_id=message.programme_id,
                    attempts=message.attempts + 1,
                    max_attempts=checked.retry.max_attempts,
                    backoff_seconds=checked.retry.backoff_seconds,
                    config=checked.channels.email,
                    out=outgoing(session, checked, message),
                )
            )
        session.flush()  # the closed and deferred ones
        _mark_sending(session, [c.message_id for c in claimed], now)
    return claimed, skipped


def _lock(
    session: Session, *, limit: int, now: datetime, programme_id: uuid.UUID | None
) -> list[Message]:
    """The due email messages locked for this batch, at most one per member, whose members
    could be locked too (``SKIP LOCKED`` on both: a message or a member busy elsewhere waits
    for the next batch, and no lock is waited for, so no deadlock with one-by-one delivery)."""
    found: list[Message] = []
    for query in _due(now):
        if programme_id is not None:
            query = query.where(Message.programme_id == programme_id)
        left = limit - len(found)
        if left > 0:
            found += session.scalars(query.limit(left).with_for_update(skip_locked=True))
    first: dict[uuid.UUID, Message] = {}
    for message in found:  # the member's next message waits for the next batch (pressure)
        first.setdefault(message.member_id, message)
    members = sorted(first)  # members locked in one order
    locked: set[uuid.UUID] = set()
    for start in range(0, len(members), readiness.CHUNK):
        locked |= set(
            session.scalars(
                select(Member.id)
                .where(Member.id.in_(members[start : start + readiness.CHUNK]))
                .order_by(Member.id)
                .with_for_update(skip_locked=True)
            )
        )
    return [first[m] for m in members if m in locked]


def _mark_sending(session: Session, ids: list[uuid.UUID], now: datetime) -> None:
    """The claimed messages ``sending`` (attempts + 1), and their first delivery jobs done:
    the batch delivers them, retries included (jobs another worker is running are skipped:
    they find the message ``sending`` and leave it)."""
    for start in range(0, len(ids), readiness.CHUNK):
        part = ids[start : start + readiness.CHUNK]
        session.execute(
            update(_MESSAGES)
            .where(_MESSAGES.c.id.in_(part))
            .values(status="sending", attempts=_MESSAGES.c.attempts + 1, updated_at=now)
        )
        pending = _JOBS.alias("pending")
        open_jobs = (
            select(pending.c.id)
            .where(
                pending.c.idempotency_key.in_([job_key(i) for i in part]),
                pending.c.status == "pending",
            )
            .with_for_update(skip_locked=True)
        )
        session.execute(
            update(_JOBS).where(_JOBS.c.id.in_(open_jobs)).values(status="done", finished_at=now)
        )


def send(claimed: list[_Claimed]) -> list[Sent | Transient | Permanent]:
    """Step 2: hand each message to its server, one connection per server for the batch."""
    results: list[Sent | Transient | Permanent] = []
    conns: dict[tuple[str, int, str | None], smtplib.SMTP | None] = {}
    try:
        for item in claimed:
            key = (item.config.host, item.config.port, item.config.username)
            results.append(_send_one(conns, key, item))
    finally:
        for conn in conns.values():
            if conn is not None:
                smtp_channel._close(conn)
    return results


def _send_one(
    conns: dict[tuple[str, int, str | None], smtplib.SMTP | None],
    key: tuple[str, int, str | None],
    item: _Claimed,
) -> Sent | Transient | Permanent:
    mime = smtp_channel.build(item.config, item.out)
    for attempt in (0, 1):
        try:
            conn = conns.get(key)
            if conn is None or attempt == 1:
                if conn is not None:
                    conn.close()
                conns[key] = None
                conn = conns[key] = smtp_channel._connect(item.config)
            refused: Any = conn.send_message(mime, from_addr=item.out.return_path)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _failure(code, text)
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code in (421,) and attempt == 0:
                continue  # the server is closing the connection: a fresh one, once
            return _failure(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            conns[key] = None
            if attempt == 0:
                continue
            return Transient(f"{type(exc).__name__}: {exc}")
        if refused:
            code, text = next(iter(refused.values()))
            return _failure(code, text)
        return Sent(answer="250 accepted", provider_id=mime["Message-ID"])
    return Transient("the connection dropped twice")


def _failure(code: int, text: bytes | str) -> Transient | Permanent:
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    failure = Transient if 400 <= code < 500 else Permanent
    return failure(f"{code} {said}")


def record(
    database: Database,
    claimed: list[_Claimed],
    results: list[Sent | Transient | Permanent],
    now: datetime,
) -> Outcome:
    """Step 3: write every outcome in one transaction (the sent ones set-based)."""
    outcome = Outcome(claimed=len(claimed))
    sent = [(c, r) for c, r in zip(claimed, results, strict=True) if isinstance(r, Sent)]
    others = [(c, r) for c, r in zip(claimed, results, strict=True) if not isinstance(r, Sent)]
    with database.transaction() as session:
        if sent:
            session.execute(
                update(_MESSAGES)
                .where(_MESSAGES.c.id == bindparam("b_id"), _MESSAGES.c.status == "sending")
                .values(
                    status="sent",
                    sent_at=now,
                    reason=None,
                    provider_id=bindparam("b_provider"),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False),
                [{"b_id": c.message_id, "b_provider": r.provider_id} for c, r in sent],
            )
            session.execute(
                insert(_LOG),
                [
                    {
                        "id": uuid7(),
                        "programme_id": c.programme_id,
                        "message_id": c.message_id,
                        "status": "sent",
                        "at": now,
                        "detail": r.answer,
                    }
                    for c, r in sent
                ],
            )
            outcome.sent = len(sent)
        for item, result in others:
            message = session.get(Message, item.message_id, with_for_update=True)
            if message is None or message.status != "sending":
                continue
            assert isinstance(result, Transient | Permanent)
            outcome.detail[str(item.message_id)] = result.answer
            if isinstance(result, Permanent):
                if result.answer.startswith("5"):
                    bounces.hard(session, message, result.answer, now)
                    outcome.bounced += 1
                else:
                    _fail(session, message, result.answer, now)
                    outcome.failed += 1
            elif item.attempts < item.max_attempts:
                due = now + jobs.backoff(item.attempts, item.backoff_seconds)
                message.status, message.due_at, message.reason = "queued", due, result.answer
                log.add(session, message, "retry", now, result.answer)
                jobs.enqueue(
                    session,
                    kind=DELIVER_JOB,
                    payload={"message_id": str(message.id)},
                    due_at=due,
                    programme_id=message.programme_id,
                )
                outcome.retried += 1
            else:
                _fail(session, message, result.answer, now)
                outcome.failed += 1
    return outcome


def _fail(session: Session, message: Message, answer: str, now: datetime) -> None:
    message.status, message.reason = "failed", answer
    log.add(session, message, "failed", now, answer)


def deliver_due(
    database: Database,
    *,
    limit: int = 500,
    now: datetime | None = None,
    programme_id: uuid.UUID | None = None,
) -> Outcome:
    """Claim, send and record one batch of due email messages (see the module's guarantee)."""
    now = now or utcnow()
    claimed, skipped = claim(database, limit=limit, now=now, programme_id=programme_id)
    results = send(claimed)
    outcome = record(database, claimed, results, now)
    outcome.skipped = skipped
    return outcome


def pump(database: Database, *, limit: int = 500, now: datetime | None = None) -> Outcome:
    """What a worker runs between its jobs: one batch of due email messages, when there are
    some (a read-only look first, so an idle worker takes no write lock)."""
    now = now or utcnow()
    with database.transaction(readonly=True) as session:
        found = [
            session.scalar(query.with_only_columns(Message.id).limit(1)) for query in _due(now)
        ]
    if found == [None, None]:
        return Outcome()
    return deliver_due(database, limit=limit, now=now)
