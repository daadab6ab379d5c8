"""`fidelia demo`: the first thing anyone runs."""

from __future__ import annotations

import secrets
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from fidelia.cli.common import console, database, run_server
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.demo import setup
from fidelia.migrations import upgrade
from fidelia.models import Programme
from fidelia.users import service as users

CDNOW = Path("../shared/data/cdnow_master.txt")


def demo(
    members: int = typer.Option(300, min=10, help="Members to generate"),
    months: int = typer.Option(12, min=1, max=60, help="Months of history"),
    seed: int = typer.Option(42, help="Seed of the generated data set"),
    dataset: str = typer.Option("generated", help="'generated' or 'cdnow' (the real CDNOW log)"),
    cdnow_path: Path = typer.Option(CDNOW, help="Where the CDNOW log is"),
    reset: bool = typer.Option(False, "--reset", help="Start again from an empty database"),
    serve: bool = typer.Option(True, help="Serve the API once ready"),
) -> None:
    """Build (or reuse) a living demo programme, print how to use it, and serve it."""
    settings = get_settings()
    url = make_url(settings.database_url)
    if reset and url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
    db = database()
    upgrade(db.engine)
    programme = setup.existing(db)
    if programme is None:
        report = _build(db, members, months, seed, dataset, cdnow_path)
        programme, key = report.programme, report.admin_key
        _summary(report)
    else:
        key = setup.new_admin_key(db, programme)
        console.print(f"reusing the demo in {url.render_as_string()} (--reset to start again)")
    _how_to(programme.slug, key, setup.showcase_member(db, programme))
    _backoffice_login(db, programme)
    if serve:
        run_server(settings.host, settings.port, 1, settings.embedded_worker)


DEMO_OWNER = "owner@demo.fidelia.dev"


def _backoffice_login(db: Database, programme: Programme) -> None:
    """The demo owner of the back-office, with a fresh password each run (shown once)."""
    password = secrets.token_urlsafe(12)
    with db.transaction() as session:
        user = users.find_by_email(session, email=DEMO_OWNER)
        if user is None:
            user = users.create_user(session, email=DEMO_OWNER, password=password, name="Demo")
        else:
            users.set_password(session, user=user, password=password)
        users.grant(session, user=user, programme=programme, role=users.Role.owner)
    settings = get_settings()
    console.print(f"\n  back-office: http://{settings.host}:{settings.port}/admin")
    console.print(f"  login: {DEMO_OWNER}   password: {password}", highlight=False)


def _build(
    db: Database, members: int, months: int, seed: int, dataset: str, cdnow_path: Path
) -> setup.DemoReport:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("replaying events through the intake", total=None)

        def progress(_step: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if dataset == "cdnow":
            if not cdnow_path.exists():
                raise typer.BadParameter(f"{cdnow_path} does not exist", param_hint="--cdnow-path")
            return setup.build_cdnow(db, path=str(cdnow_path), progress=progress)
        if dataset != "generated":
            raise typer.BadParameter("'generated' or 'cdnow'", param_hint="--dataset")
        return setup.build(db, members=members, months=months, seed=seed, progress=progress)


def _summary(report: setup.DemoReport) -> None:
    table = Table("", "", title="demo ready")
    table.add_row(
        "events replayed",
        f"{report.events:,} ({report.accepted:,} accepted, {report.rejected:,} rejected)",
    )
    table.add_row(
        "redemptions",
        ", ".join(f"{k} {v}" for k, v in sorted(report.redemptions.items())) or "none",
    )
    table.add_row("vouchers used at the till", str(report.vouchers_used))
    table.add_row("jobs run (releases, expiries)", str(report.jobs_run))
    table.add_row("time", f"{report.seconds.get('total', 0):.1f} s")
    console.print(table)


def _how_to(slug: str, key: str, member: dict[str, object] | None) -> None:
    settings = get_settings()
    base = f"http://{settings.host}:{settings.port}"
    auth = f"-H 'Authorization: Bearer {key}'"
    console.print(f"\n[bold]Fidelia demo[/bold] — programme [bold]{slug}[/bold]")
    console.print(f"  API and its documentation: {base}/docs")
    console.print("  admin API key (shown once):")
    console.print(f"  {key}", highlight=False, soft_wrap=True)
    console.print("\nthree calls to start with:")
    examples = [f"curl {auth} {base}/api/v1/programme/document"]
    if member is not None:
        examples.append(f"curl {auth} {base}/api/v1/members/{member['id']}/wallets")
        examples.append(f"curl {auth} {base}/api/v1/members/{member['id']}/tier")
    for example in examples:
        console.print(f"  {example}", highlight=False, soft_wrap=True)
