"""`fidelia traits`: recompute a programme's computed traits from its event log."""

from __future__ import annotations

import time
from datetime import datetime

import typer

from fidelia.cli.common import console, database, err_console, failing_cleanly, programme_by_slug
from fidelia.kit.clock import ensure_aware, utcnow
from fidelia.traits.rebuild import CHUNK, rebuild, refresh

traits_app = typer.Typer(help="Computed member traits.", no_args_is_help=True)


@traits_app.command("rebuild")
def rebuild_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    at: str = typer.Option(None, "--at", help="ISO instant with offset (default: now)"),
    chunk: int = typer.Option(CHUNK, min=1, max=1_000_000, help="Members per SQL pass"),
) -> None:
    """Replace every member's traits by a recomputation from the events (one transaction)."""
    when = _instant(at) if at else utcnow()
    clock = time.perf_counter()
    db = database()
    with failing_cleanly(), db.transaction() as session:
        found = programme_by_slug(session, programme)
        report = rebuild(session, programme=found, now=when, chunk=chunk)
    console.print(
        f"rebuilt the traits of {report.members} members ({report.purchasers} with purchases) "
        f"in {time.perf_counter() - clock:.2f} s"
    )


@traits_app.command("refresh")
def refresh_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    at: str = typer.Option(None, "--at", help="ISO instant with offset (default: now)"),
) -> None:
    """What the daily job does: RFM scores and cells, windows and lifecycle stages as of now."""
    when = _instant(at) if at else utcnow()
    db = database()
    with failing_cleanly(), db.transaction() as session:
        changed = refresh(session, programme=programme_by_slug(session, programme), now=when)
    console.print(f"refreshed: {changed} members changed window or lifecycle stage")


def _instant(text: str) -> datetime:
    try:
        return ensure_aware(datetime.fromisoformat(text))
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] --at: {exc}")
        raise typer.Exit(2) from exc
