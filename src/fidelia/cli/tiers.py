"""`fidelia tiers`: the period-end requalification of a programme's members."""

from __future__ import annotations

from datetime import datetime

import typer

from fidelia.cli.common import console, database, err_console, failing_cleanly, programme_by_slug
from fidelia.kit.clock import ensure_aware, utcnow
from fidelia.tiers.requalify import requalify
from fidelia.tiers.service import section_for

tiers_app = typer.Typer(help="Status tiers.", no_args_is_help=True)


@tiers_app.command("requalify")
def requalify_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    at: str = typer.Option(
        None, "--at", help="ISO instant with offset: review members due by then (default: now)"
    ),
) -> None:
    """Review every member whose window, grace period or manual assignment has ended."""
    when = _instant(at) if at else utcnow()
    db = database()
    with failing_cleanly(), db.transaction() as session:
        found = programme_by_slug(session, programme)
        if section_for(session, found) is None:
            err_console.print(f"[red]programme {programme!r} has no tiers[/red]")
            raise typer.Exit(1)
        report = requalify(session, programme=found, at=when)
    console.print(
        f"reviewed {report.reviewed} members: {report.upgraded} up, {report.downgraded} down, "
        f"{report.in_grace} in grace ({report.seconds:.2f} s)"
    )


def _instant(text: str) -> datetime:
    try:
        return ensure_aware(datetime.fromisoformat(text))
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] --at: {exc}")
        raise typer.Exit(2) from exc
