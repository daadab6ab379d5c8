"""Email sends: messages queued through ``messaging.service.queue`` (rendered from a template
with each member's profile, traits, wallets and tier) and delivered by the worker's jobs to a
local SMTP sink, per second, against plain ``smtplib`` sends of the same rendered messages on
one connection to the same sink (the ceiling), in the same run.

The sink is aiosmtpd on 127.0.0.1 in this process (it answers 250 and keeps nothing), so both
sides pay the same SMTP conversation. The timed pipeline is what a scheduled send does: one
transaction queues N messages with ``queue_many`` (members' addresses, consents and balances
read in one query each, templates rendered, messages, log rows and delivery jobs inserted
together), then the jobs run one by one as the worker runs them
(member locked, contact pressure read, MIME built, SMTP, status and log written).

A third side (issue 11) queues the same way and delivers with ``messaging.batch``: due
messages claimed 500 at a time (``sending``), sent on one SMTP connection, the outcomes
recorded set-based.

    python bench/bench_messaging.py [--messages 2000] [--runs 3] [--backend sqlite|postgresql]
        [--quick]
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import baseline, database_url, emit, figure, log, quick_mode, stats

NAME = "messaging"
TEMPLATE = {
    "code": "weekly",
    "locales": {
        "fr": {
            "subject": "{{ member.first_name }}, vos {{ points.points }} points",
            "text": "Bonjour {{ member.first_name }},\n{% if tier.next %}Plus que "
            "{{ tier.missing }} pour {{ tier.next }}.{% endif %}\n{{ links.unsubscribe }}",
            "html": "<html><body><p>Bonjour {{ member.first_name }}</p>"
            '<a href="https://shop.example.org/semaine">Les offres</a></body></html>',
        }
    },
}


class Sink:
    async def handle_DATA(self, _server: object, _session: object, _envelope: Any) -> str:
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build(url: str, port: int, members: int) -> tuple[Any, uuid.UUID, list[uuid.UUID]]:
    from fidelia.db import Database
    from fidelia.members import service as members_service
    from fidelia.members.schemas import MemberCreate
    from fidelia.migrations import upgrade
    from fidelia.programmes import documents
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    database = Database.from_url(url)
    upgrade(database.engine)
    doc = {
        "messaging": {
            "channels": {
                "email": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from_address": "club@shop.example.org",
                },
            },
            "fallback": ["email"],
            "public_url": "https://loyalty.example.org",
            "templates": [TEMPLATE],
        }
    }
    with database.transaction() as session:
        programme = programmes.create(
            session,
            data=ProgrammeCreate(slug="bench", name="Bench", currency="EUR",
                                 timezone="Europe/Paris", country="FR"),
        )  # fmt: skip
        documents.apply(session, programme=programme, raw=doc, actor="bench")
        ids = []
        if members > 5000:  # a large segment: rows written set-based, not enrolled one by one
            ids = _generate(session, programme.id, members)
        for i in range(members if members <= 5000 else 0):
            data = MemberCreate.model_validate(
                {
                    "email": f"m{i}@example.org",
                    "first_name": f"Membre{i}",
                    "locale": "fr",
                    "consents": [{"channel": "email", "granted": True}],
                }
            )
            member = members_service.insert_member(session, programme=programme, data=data)
            ids.append(member.id)
        programme_id = programme.id
    return database, programme_id, ids


def _generate(session: Any, programme_id: uuid.UUID, members: int) -> list[uuid.UUID]:
    """Members with an email identity and the email consent, inserted by chunks (what
    ``insert_member`` writes for these fields)."""
    from sqlalchemy import insert

    from fidelia.kit.clock import utcnow
    from fidelia.kit.ids import uuid7
    from fidelia.models import Consent, Member, MemberIdentity

    now = utcnow()
    ids = [uuid7() for _ in range(members)]
    models = {"members": Member, "member_identities": MemberIdentity, "consents": Consent}

    def insert_rows(table: str, rows: list[dict[str, Any]]) -> None:
        session.execute(insert(models[table]), rows)  # ORM bulk: the columns' defaults too

    for start in range(0, members, 5000):
        part = list(enumerate(ids))[start : start + 5000]
        insert_rows("members", [
            {"id": m, "programme_id": programme_id, "status": "active",
             "enrolment_channel": "web", "enrolled_at": now, "first_name": f"Membre{i}",
             "locale": "fr", "attributes": {}}
            for i, m in part
        ])  # fmt: skip
        insert_rows("member_identities", [
            {"id": uuid7(), "programme_id": programme_id, "member_id": m, "kind": "email",
             "namespace": "", "value": f"m{i}@example.org"}
            for i, m in part
        ])  # fmt: skip
        insert_rows("consents", [
            {"id": uuid7(), "programme_id": programme_id, "member_id": m, "channel": "email",
             "granted": True, "changed_at": now, "source": "bench"}
            for _, m in part
        ])  # fmt: skip
    return ids


def pipeline(
    database: Any, programme_id: uuid.UUID, ids: list[uuid.UUID], run: int, batched: bool = False
) -> float:
    """Queue and deliver one message per member (by the jobs, or in batches); messages per
    second."""
    from sqlalchemy import select

    from fidelia.jobs import service as jobs
    from fidelia.kit.clock import utcnow
    from fidelia.messaging import service
    from fidelia.models import Member, Programme

    started = time.perf_counter()
    for start in range(0, len(ids), 5000):  # a scheduled send queues its segment by chunks
        with database.transaction() as session:
            programme = session.get(Programme, programme_id)
            now = utcnow()
            part = ids[start : start + 5000]
            found = session.scalars(select(Member).where(Member.id.in_(part))).all()
            requests = [
                service.Request(
                    member=member,
                    template="weekly",
                    content=None,
                    channels=[],
                    kind="marketing",
                    content_key=f"run-{run}",
                    event={},
                    expires_at=None,
                    idempotency_key=None,
                    source="bench",
                )
                for member in found
            ]
            service.queue_many(session, programme=programme, requests=requests, now=now)
    queued = time.perf_counter()
    if batched:
        from fidelia.messaging import batch

        ran = 0
        while (
            outcome := batch.deliver_due(database, limit=500, programme_id=programme_id)
        ).claimed:
            ran += outcome.sent
        elapsed = time.perf_counter() - started
        jobs.run_due(database)  # the per-message jobs, now no-ops (not timed)
    else:
        ran = jobs.run_due(database)
        elapsed = time.perf_counter() - started
    assert ran == len(ids), ran
    log(f"run {run}: queue {queued - started:.2f} s, deliver {elapsed - (queued - started):.2f} s")
    return len(ids) / elapsed


def plain(database: Any, programme_id: uuid.UUID, port: int, run: int) -> float:
    """The same rendered messages, built and sent with smtplib on one connection."""
    from sqlalchemy import select

    from fidelia.messaging.channels.base import Outgoing
    from fidelia.messaging.channels.smtp import build as build_mime
    from fidelia.messaging.schemas import SmtpChannel
    from fidelia.models.messaging import Message

    config = SmtpChannel(host="127.0.0.1", port=port, security="none",
                         from_address="club@shop.example.org")  # fmt: skip
    with database.transaction(readonly=True) as session:
        rows = session.scalars(
            select(Message).where(Message.programme_id == programme_id,
                                  Message.content_key == f"run-{run}")
        ).all()  # fmt: skip
        outs = [
            Outgoing(message_id=m.id, member_id=m.member_id, to=m.recipient or "",
                     subject=m.subject, text=m.body_text, html=m.body_html, sms=None,
                     kind=m.kind, unsubscribe_url="https://loyalty.example.org/u/x")
            for m in rows
        ]  # fmt: skip
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for out in outs:
            conn.send_message(build_mime(config, out))
    return len(outs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--no-jobs", action="store_true", help="skip the one-job-per-message side")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    count, runs = (300, 2) if quick else (args.messages, args.runs)
    from aiosmtpd.controller import Controller

    from fidelia.messaging.channels import smtp as smtp_channel

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmp, database_url(args.backend, Path(tmp)) as url:
        database, programme_id, ids = build(url, port, count)
        sent: list[float] = []
        batched: list[float] = []
        ceiling: list[float] = []
        for run in range(runs):
            if not args.no_jobs:
                sent.append(pipeline(database, programme_id, ids, 2 * run))
            batched.append(pipeline(database, programme_id, ids, 2 * run + 1, batched=True))
            ceiling.append(plain(database, programme_id, port, 2 * run + 1))
            log(f"run {run}: {sent[-1] if sent else 0:.0f} msg/s by jobs, "
                f"{batched[-1]:.0f} batched, {ceiling[-1]:.0f} plain")  # fmt: skip
        smtp_channel.close_all()
        database.dispose()
    controller.stop()
    backend = "SQLite" if args.backend == "sqlite" else "PostgreSQL"
    base = baseline("plain smtplib sends of the same messages, one connection", stats(ceiling),
                    unit="msg/s")  # fmt: skip
    figures = [figure(
        f"emails queued, rendered and delivered in batches of 500 on one SMTP connection, "
        f"{backend} ({count} members)",
        stats(batched), unit="msg/s", base=base,
        note="queue_many in one transaction, then messaging.batch: claim, send, record",
    )]  # fmt: skip
    if sent:
        figures.append(figure(
            f"emails queued, rendered and delivered to an SMTP sink, {backend} ({count} members)",
            stats(sent), unit="msg/s", base=base,
            note="one transaction queues all, then one job per message; sink in-process",
        ))  # fmt: skip
    emit(NAME, figures)


if __name__ == "__main__":
    main()
