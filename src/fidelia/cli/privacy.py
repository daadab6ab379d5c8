"""`fidelia export` (tables as CSV or JSON lines) and `fidelia privacy` (GDPR access export,
erasure, retention)."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import typer

from fidelia.cli.common import console, database, err_console, failing_cleanly, programme_by_slug
from fidelia.errors import ValidationFailed
from fidelia.exports import jobs as export_jobs  # noqa: F401  (registers the export jobs)
from fidelia.exports import service as exports
from fidelia.kit.bounds import check_instant
from fidelia.kit.clock import utcnow
from fidelia.privacy import erase_member, export_member, run_retention
from fidelia.privacy.retention import schedule
from fidelia.programmes import service as programmes
from fidelia.webhooks import pruning

privacy_app = typer.Typer(help="GDPR: access export, erasure, retention.", no_args_is_help=True)
ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


def export_command(
    table: str = typer.Argument(..., help="members, events, ledger or redemptions"),
    programme: str = ProgrammeOpt,
    fmt: str = typer.Option("csv", "--format", "-f", help="csv or jsonl"),
    since: str = typer.Option(
        None, help="Only rows changed/received/posted at or after (ISO 8601 with an offset)"
    ),
    output: Path = typer.Option(None, "--output", "-o", help="A file (default: stdout)"),
) -> None:
    """Export a table of the programme, streamed in constant memory (columns: docs/exports.md)."""
    db = database()
    with failing_cleanly():
        exports.table_of(table)
        exports.check_format(fmt)
        after = _instant(since) if since is not None else None
        with db.transaction(readonly=True) as session:
            found = programme_by_slug(session, programme)
            chunks = exports.export(session, programme=found, table=table, fmt=fmt, since=after)
            if output is None:
                _write(chunks, sys.stdout.buffer)
            else:
                with output.open("wb") as sink:
                    _write(chunks, sink)
    if output is not None:
        err_console.print(f"wrote {output}")


def _instant(text: str) -> datetime:
    try:
        return check_instant(datetime.fromisoformat(text))
    except ValueError as exc:
        raise ValidationFailed.on("since", str(exc)) from exc


def _write(chunks: Iterable[bytes], sink: BinaryIO) -> None:
    for chunk in chunks:
        sink.write(chunk)
    sink.flush()


@privacy_app.command("export-member")
def export_member_command(member_id: uuid.UUID, programme: str = ProgrammeOpt) -> None:
    """Print everything held about a member as JSON (GDPR access)."""
    db = database()
    with failing_cleanly(), db.transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        body = export_member(session, programme=found, member_id=member_id)
    sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")


@privacy_app.command("erase")
def erase_command(
    member_id: uuid.UUID,
    programme: str = ProgrammeOpt,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation"),
) -> None:
    """Erase a member's personal data (GDPR erasure; the ledger and counts are kept)."""
    if not yes:
        typer.confirm(
            f"Erase the personal data of member {member_id}? This cannot be undone", abort=True
        )
    db = database()
    with failing_cleanly(), db.transaction() as session:
        found = programme_by_slug(session, programme)
        done = erase_member(session, programme=found, member_id=member_id, actor="cli")
    state = "was already erased; scrubbed again" if done.already else "erased"
    console.print(f"member {member_id} {state}: {done.events_rewritten} events rewritten")
    if done.tables_refused:
        err_console.print(f"[yellow]left as they were:[/yellow] {', '.join(done.tables_refused)}")


@privacy_app.command("retention")
def retention_command(
    programme: str = typer.Option(None, "--programme", "-p", help="Only this programme"),
) -> None:
    """Apply the retention now (members closed for longer than the programme's
    privacy.retention_months are erased) and arm the daily job."""
    db = database()
    with failing_cleanly(), db.transaction() as session:
        found = (
            [programme_by_slug(session, programme)] if programme else programmes.list_all(session)
        )
        for each in found:
            erased = run_retention(session, programme=each)
            console.print(f"{each.slug}: {len(erased)} members erased")
        schedule(session, after=utcnow())


@privacy_app.command("prune")
def prune_command() -> None:
    """Delete webhook deliveries delivered (or failed) long ago and old notices no delivery
    needs any more (FIDELIA_PRUNE_*_DAYS), one chunk per transaction, and arm the daily job."""
    db = database()
    total = pruning.Pruned()
    with failing_cleanly():
        while True:
            with db.transaction() as session:
                done = pruning.prune_chunk(session)
            total.add(done)
            if not done.more:
                break
        with db.transaction() as session:
            pruning.schedule(session, after=utcnow())
    console.print(
        f"pruned {total.delivered} delivered and {total.failed} failed deliveries, "
        f"{total.notices} notices"
    )


def arm_retention() -> None:
    """Make sure the daily retention sweep and the daily pruning are scheduled (for
    `fidelia worker` and `serve`)."""
    with database().transaction() as session:
        schedule(session, after=utcnow())
        pruning.schedule(session, after=utcnow())
