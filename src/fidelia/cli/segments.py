"""`fidelia segments`: list, show, preview, members, export and sweep a programme's segments."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path

import typer
import yaml
from rich.table import Table

from fidelia.cli.common import console, database, err_console, failing_cleanly, programme_by_slug
from fidelia.kit.clock import ensure_aware, utcnow
from fidelia.kit.conditions import dump_condition, parse_condition
from fidelia.segments import live, service, summaries

segments_app = typer.Typer(help="Live segments.", no_args_is_help=True)
ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


@segments_app.command("list")
def list_command(programme: str = ProgrammeOpt) -> None:
    """Every segment of the live document with its size."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        section = service.section_for(session, found)
        sizes = service.sizes(session, programme=found)
        table = Table("code", "label", "members")
        for segment in section.definitions if section else []:
            label = next(iter(segment.labels.values()), "")
            table.add_row(segment.code, label, str(sizes.get(segment.code, 0)))
    console.print(table)


@segments_app.command("show")
def show_command(code: str, programme: str = ProgrammeOpt) -> None:
    """A segment's labels and condition (YAML), its size and its last 7 days."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        segment = service.get(session, programme=found, code=code)
        days = service.counts(session, programme=found, code=code, days=7, now=utcnow())
    text = {"code": segment.code, "labels": dict(segment.labels),
            "condition": dump_condition(segment.condition)}  # fmt: skip
    console.print(yaml.safe_dump(text, sort_keys=False, allow_unicode=True))
    for day in days:
        console.print(f"{day.day}: {day.members} members (+{day.entered} -{day.left})")


@segments_app.command("preview")
def preview_command(
    condition: str = typer.Argument(..., help="The condition as JSON or YAML, or @file"),
    programme: str = ProgrammeOpt,
    sample: int = typer.Option(10, min=0, max=100, help="How many members to show"),
) -> None:
    """How many members a condition holds now, and a few of them; nothing is saved."""
    raw = Path(condition[1:]).read_text() if condition.startswith("@") else condition
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        parsed = parse_condition(yaml.safe_load(raw), loc=("condition",))
        result = service.preview(
            session, programme=found, condition=parsed, sample=sample, now=utcnow()
        )
    console.print(f"{result.count} members ({result.seconds:.3f} s)")
    for member in result.sample:
        console.print(f"  {member.id} {member.first_name or ''} {member.last_name or ''}")


@segments_app.command("members")
def members_command(
    code: str, programme: str = ProgrammeOpt, limit: int = typer.Option(50, min=1, max=10000)
) -> None:
    """The first members of a segment (by id), with since when."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        service.get(session, programme=found, code=code)
        rows = service.members_page(session, programme=found, code=code, after=None, limit=limit)
    for member, since in rows:
        console.print(f"{member.id} {member.status} since {since.isoformat()}")


@segments_app.command("export")
def export_command(
    code: str,
    programme: str = ProgrammeOpt,
    output: Path = typer.Option(None, "--output", "-o", help="CSV file (default: stdout)"),
) -> None:
    """Every member of a segment as CSV (member_id, first_name, last_name, status, since)."""
    out = output.open("w", newline="") if output else sys.stdout
    writer = csv.writer(out)
    writer.writerow(["member_id", "first_name", "last_name", "status", "since"])
    count = 0
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        service.get(session, programme=found, code=code)
        for member_id, first, last, state, since in service.export_rows(
            session, programme=found, code=code
        ):
            writer.writerow([member_id, first or "", last or "", state, since.isoformat()])
            count += 1
    if output:
        out.close()
        err_console.print(f"{count} members written to {output}")


@segments_app.command("sweep")
def sweep_command(
    programme: str = ProgrammeOpt,
    at: str = typer.Option(None, "--at", help="ISO instant with offset (default: now)"),
) -> None:
    """Re-evaluate every segment for every member, as the daily job does."""
    try:
        when = ensure_aware(datetime.fromisoformat(at)) if at else utcnow()
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] --at: {exc}")
        raise typer.Exit(2) from exc
    with failing_cleanly(), database().transaction() as session:
        found = programme_by_slug(session, programme)
        report = live.sweep(session, programme=found, now=when)
    figures = {"segments": report.segments, "entered": report.entered, "left": report.left}
    console.print(json.dumps({**figures, "seconds": round(report.seconds, 3)}))


@segments_app.command("summarise")
def summarise_command(programme: str = ProgrammeOpt) -> None:
    """Rebuild the per-member event summaries that segments count from, from the event log
    (after events were written around the intake; the intake keeps them otherwise)."""
    db = database()
    with failing_cleanly():
        with db.transaction() as session:
            found = programme_by_slug(session, programme)
            rebuilt = summaries.rebuild(session, programme_id=found.id)
        summaries.vacuum(db.engine)
    console.print(json.dumps({"rows": rebuilt.rows, "seconds": round(rebuilt.seconds, 3)}))
