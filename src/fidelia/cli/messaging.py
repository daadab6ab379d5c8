"""`fidelia messaging bounces`: hand in delivery status notifications from a mailbox."""

from __future__ import annotations

import json
import mailbox
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug
from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.messaging import batch, bounces, service

messaging_app = typer.Typer(help="Messaging: bounces.", no_args_is_help=True)
ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


def _messages(source: str) -> Iterator[bytes]:
    """Each raw message of ``source``: ``-`` (stdin, one message), a Maildir directory, an
    mbox file (first line ``From ``) or a file holding one message."""
    if source == "-":
        yield sys.stdin.buffer.read()
        return
    path = Path(source)
    if path.is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in box.iterkeys():
            yield box.get_bytes(key)
        return
    with path.open("rb") as handle:
        first = handle.readline()
    if first.startswith(b"From "):
        for key in (mbox := mailbox.mbox(path, create=False)).iterkeys():
            yield mbox.get_bytes(key)
        return
    yield path.read_bytes()


@messaging_app.command("bounces")
def bounces_command(
    source: str = typer.Argument("-", help="A Maildir directory, an mbox file, a file or -"),
    programme: str = ProgrammeOpt,
) -> None:
    """Read delivery status notifications (RFC 3464) and apply them: hard bounces mark the
    message bounced and the address unreachable, soft ones queue the message again. A message
    that is not a DSN is counted as skipped (with why) and changes nothing."""
    counts = {"hard": 0, "soft": 0, "logged": 0, "unmatched": 0, "skipped": 0}
    with failing_cleanly():
        db = database()
        with db.transaction(readonly=True) as session:
            programme_by_slug(session, programme)  # a wrong slug fails before any reading
        for raw in _messages(source):
            try:
                with db.transaction() as session:
                    found = programme_by_slug(session, programme)
                    got = bounces.record_raw(
                        session,
                        programme=found,
                        section=service.section_for(session, found),
                        raw=raw,
                        now=utcnow(),
                    )
            except ValidationFailed as exc:
                counts["skipped"] += 1
                console.print(f"skipped: {exc}", soft_wrap=True)
                continue
            for name, n in got.items():
                counts[name] += n
    console.print_json(json.dumps(counts))


@messaging_app.command("deliver")
def deliver_command(
    programme: str = ProgrammeOpt,
    limit: int = typer.Option(500, min=1, max=5000, help="Messages claimed per batch"),
) -> None:
    """Send the programme's due email messages in batches on one SMTP connection until none
    is due (docs/messaging.md: Sending, the guarantee)."""
    totals = {"claimed": 0, "sent": 0, "bounced": 0, "retried": 0, "failed": 0, "skipped": 0}
    with failing_cleanly():
        db = database()
        with db.transaction(readonly=True) as session:
            programme_id = programme_by_slug(session, programme).id
        while True:
            outcome = batch.deliver_due(db, limit=limit, programme_id=programme_id)
            for name in totals:
                totals[name] += getattr(outcome, name)
            if outcome.claimed + outcome.skipped == 0:
                break
    console.print_json(json.dumps(totals))
