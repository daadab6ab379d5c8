"""`fidelia`: install, migrate, serve, import, manage keys and jobs."""

from __future__ import annotations

import signal
import threading

import typer

from fidelia.api.runtime import collect_less
from fidelia.cli import backtest, data, demo, generate, ledger, programme, rewards, tiers, traits
from fidelia.cli.common import console, database, run_server, setup_logging
from fidelia.cli.messaging import messaging_app
from fidelia.cli.offers import offers_app, plans_app
from fidelia.cli.privacy import arm_retention, export_command, privacy_app
from fidelia.cli.report import report_app
from fidelia.cli.scenarios import scenarios_app
from fidelia.cli.segments import segments_app
from fidelia.cli.users import user_app
from fidelia.config import get_settings
from fidelia.migrations import upgrade

app = typer.Typer(help="Fidelia: customer loyalty and engagement platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(programme.programme_app, name="programme")
app.add_typer(programme.apikey_app, name="apikey")
app.add_typer(data.members_app, name="members")
app.add_typer(data.events_app, name="events")
app.add_typer(data.jobs_app, name="jobs")
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(tiers.tiers_app, name="tiers")
app.add_typer(traits.traits_app, name="traits")
app.add_typer(report_app, name="report")
app.add_typer(segments_app, name="segments")
app.add_typer(offers_app, name="offers")
app.add_typer(plans_app, name="plans")
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(messaging_app, name="messaging")
app.add_typer(rewards.vouchers_app, name="vouchers")
app.add_typer(user_app, name="user")
app.command("demo")(demo.demo)
app.command("backtest")(backtest.backtest_command)
app.command("generate")(generate.generate)
app.command("export")(export_command)
app.add_typer(privacy_app, name="privacy")


@app.callback()
def _every_command() -> None:
    # the collector's young threshold of a long-running process (fidelia.api.runtime): an
    # import spent half its time in collections with the default
    collect_less()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Create or migrate the database to the latest schema."""
    db = database()
    upgrade(db.engine, revision)
    console.print(f"database at [bold]{db.engine.url.render_as_string()}[/bold] is up to date")


@app.command()
def serve(
    host: str = typer.Option(
        None, help="Address to listen on [default: FIDELIA_HOST or 127.0.0.1]"
    ),
    port: int = typer.Option(None, help="Port [default: FIDELIA_PORT or 8000]"),
    workers: int = typer.Option(
        1, min=1, help="API processes (PostgreSQL); >1 runs no in-process worker"
    ),
    embedded_worker: bool = typer.Option(True, help="Run background jobs inside this process"),
) -> None:
    """Serve the API (OpenAPI at /docs)."""
    settings = get_settings()
    if embedded_worker and workers == 1:
        arm_retention()
    run_server(
        host or settings.host, port or settings.port, workers, embedded_worker and workers == 1
    )


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Run the jobs due now, then exit"),
    poll: float = typer.Option(
        None, help="Seconds between polls when no job is due [default: FIDELIA_WORKER_POLL_SECONDS]"
    ),
) -> None:
    """Run background jobs. Any number of workers may run at once on PostgreSQL."""
    from fidelia.jobs import service as jobs
    from fidelia.worker.runner import run_until

    setup_logging()
    db = database()
    arm_retention()
    if once:
        console.print(f"ran {jobs.run_due(db)} jobs")
        return
    stop = threading.Event()

    def finish(signum: int, _frame: object) -> None:
        """The first Ctrl-C or SIGTERM lets the current job or batch finish, then the loop
        ends; a second one stops at once (a KeyboardInterrupt raised anywhere in the loop
        could be swallowed on its way out, and the worker went on)."""
        stop.set()
        again = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, again)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, finish)
    console.print("worker running; Ctrl-C to stop")
    try:
        run_until(db, stop, poll_seconds=poll or get_settings().worker_poll_seconds)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def version() -> None:
    """Print the version."""
    from fidelia import __version__

    console.print(__version__)
