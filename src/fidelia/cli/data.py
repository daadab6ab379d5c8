from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fidelia.cli.common import console, database, failing_cleanly, id_column, programme_by_slug
from fidelia.db import Database
from fidelia.events.checks import validation_failed
from fidelia.intake import enrolment
from fidelia.intake.imports import ImportReport, run_import
from fidelia.jobs import service as jobs
from fidelia.members.schemas import MemberCreate

members_app = typer.Typer(help="Members.", no_args_is_help=True)
events_app = typer.Typer(help="Events.", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs.", no_args_is_help=True)

ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _import(
    kind: Literal["events", "members"],
    path: Path,
    programme: str,
    fmt: str,
    chunk: int,
    enrol_unknown: Literal["prospect", "active"] | None = None,
) -> None:
    db = database(background_checkpoints=True)  # SQLite: the log copied back by a thread
    try:
        _import_into(db, kind, path, programme, fmt, chunk, enrol_unknown)
    finally:
        db.dispose()  # the thread's last checkpoint, then the connections closed


def _import_into(
    db: Database,
    kind: Literal["events", "members"],
    path: Path,
    programme: str,
    fmt: str,
    chunk: int,
    enrol_unknown: Literal["prospect", "active"] | None,
) -> None:
    db.start_checkpointer()
    with failing_cleanly(), db.transaction(readonly=True) as session:
        programme_id = programme_by_slug(session, programme).id
    total = _count_lines(path)
    columns = (
        TextColumn(f"[bold]{kind}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "accepted {task.fields[accepted]} · duplicates {task.fields[duplicates]}"
            " · rejected {task.fields[rejected]}"
        ),
        TextColumn("{task.fields[rate]:,.0f} lines/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(kind, total=total, accepted=0, duplicates=0, rejected=0, rate=0.0)

        def progress(advance: int, report: ImportReport) -> None:
            bar.update(
                task,
                advance=advance,
                accepted=report.accepted,
                duplicates=report.duplicates,
                rejected=report.rejected,
                rate=report.rate,
            )

        try:
            report = run_import(
                db,
                programme_id=programme_id,
                path=path,
                kind=kind,
                fmt=fmt,
                chunk_size=chunk,
                enrol_unknown=enrol_unknown,
                progress=progress,
            )
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    _print_report(report, path)


def _print_report(report: ImportReport, path: Path) -> None:
    if report.resumed_after_line:
        console.print(
            f"resumed after line {report.resumed_after_line} (an earlier run stopped there)"
        )
    console.print(
        f"{report.lines} lines in {report.seconds:.1f} s ({report.rate:,.0f}/s): "
        f"{report.accepted} accepted, {report.duplicates} already there, {report.rejected} rejected"
    )
    if report.rejects:
        table = Table("line", "id", "error", "detail", title="rejected lines (first 20)")
        for r in report.rejects[:20]:
            table.add_row(str(r.line), r.id, r.error, r.detail)
        console.print(table)
        console.print(f"every rejected line is in {path.name}.rejects.csv")


@members_app.command("import")
def import_members(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSON Lines file"),
    programme: str = ProgrammeOpt,
    fmt: str = typer.Option("auto", "--format", help="csv, jsonl, or auto (by extension)"),
    chunk: int = typer.Option(1000, min=1, max=10000, help="Lines per transaction"),
) -> None:
    """Import members; idempotent (existing identities are skipped) and resumable. Each new
    member is enrolled as by ``members enrol``: the programme runs on their enrolment."""
    _import("members", path, programme, fmt, chunk)


@members_app.command("enrol")
def enrol_member(
    programme: str = ProgrammeOpt,
    card: str = typer.Option(None, help="Loyalty card number"),
    email: str = typer.Option(None),
    phone: str = typer.Option(None, help="Read in the programme's country unless +<code>"),
    first_name: str = typer.Option(None),
    last_name: str = typer.Option(None),
    channel: str = typer.Option("store", help="store, web, app, import, call_centre, partner"),
    store: str = typer.Option(None),
    idempotency_key: str = typer.Option(None, help="Makes a retry safe: answers the first one"),
) -> None:
    """Enrol one member, as POST /api/v1/members does: their enrolment event runs the programme
    (rules, badges, tier); prints the member's id and what the enrolment earned."""
    given = {
        "card": card,
        "email": email,
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "channel": channel,
        "store": store,
    }
    with failing_cleanly():
        try:
            data = MemberCreate.model_validate({k: v for k, v in given.items() if v is not None})
        except ValidationError as exc:
            raise validation_failed(exc, ()) from exc
        with database().transaction() as session:
            enrolled = enrolment.enrol(
                session,
                programme=programme_by_slug(session, programme),
                data=data,
                actor="cli",
                idempotency_key=idempotency_key,
            )
    outcome = enrolled.outcome
    console.print(f"member {enrolled.member.id} enrolled (event {outcome.id})")
    if outcome.status == "duplicate":
        console.print("a retry: the first enrolment's answer, nothing done again")
    for wallet, amount in outcome.totals.items():
        console.print(f"  earned {amount} {wallet}")
    for effect in outcome.effects:
        what = effect.get("code") or effect.get("to") or effect.get("badge") or ""
        console.print(f"  {effect.get('kind')} {what}".rstrip())


@events_app.command("import")
def import_events(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV, JSON Lines or CDNOW file"
    ),
    programme: str = ProgrammeOpt,
    fmt: str = typer.Option("auto", "--format", help="csv, jsonl, cdnow, or auto (by extension)"),
    chunk: int = typer.Option(1000, min=1, max=1000, help="Events per transaction"),
    enrol_unknown: bool = typer.Option(
        False, help="Enrol unknown identities as active members (e.g. a customer history)"
    ),
) -> None:
    """Import events through the same intake as the API; idempotent and resumable."""
    _import("events", path, programme, fmt, chunk, "active" if enrol_unknown else None)


@jobs_app.command("list")
def list_jobs(
    status: str = typer.Option(None, help="pending, done or dead"),
    kind: str = typer.Option(None, help="Only jobs of this kind"),
    limit: int = typer.Option(50, min=1),
) -> None:
    """List jobs, latest due first, with counts per status."""
    table = Table(id_column(), "kind", "status", "due", "attempts", "last error")
    with database().transaction(readonly=True) as session:
        counts = jobs.counts(session)
        for job in jobs.list_jobs(session, status=status, kind=kind, limit=limit):
            table.add_row(
                str(job.id),
                job.kind,
                job.status,
                job.due_at.isoformat(timespec="seconds"),
                f"{job.attempts}/{job.max_attempts}",
                (job.last_error or "")[:80],
            )
    console.print(table)
    console.print(" · ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no jobs")


@jobs_app.command("retry")
def retry_job(job_id: uuid.UUID) -> None:
    """Give a dead job another round of attempts."""
    with failing_cleanly(), database().transaction() as session:
        jobs.retry(session, job_id=job_id)
    console.print(f"job {job_id} is due again")
