from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import typer
import uvicorn
from rich.console import Console
from rich.table import Column
from sqlalchemy.orm import Session

from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.errors import FideliaError
from fidelia.models import Programme
from fidelia.programmes import service as programmes

console = Console()
err_console = Console(stderr=True)


def database(*, background_checkpoints: bool = False) -> Database:
    settings = get_settings()
    return Database.from_url(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.db_pool_size,
        background_checkpoints=background_checkpoints,
    )


@contextmanager
def failing_cleanly() -> Iterator[None]:
    """Domain errors become one red line and exit code 1, never a traceback."""
    try:
        yield
    except FideliaError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        for field in exc.fields:
            err_console.print(f"  {'.'.join(str(p) for p in field.loc)}: {field.msg}")
        raise typer.Exit(1) from exc


def id_column() -> Column:
    """An id column that a narrow terminal never truncates: commands take the id back."""
    return Column("id", no_wrap=True, min_width=36)


def programme_by_slug(session: Session, slug: str) -> Programme:
    return programmes.get_by_slug(session, slug=slug)


def setup_logging() -> None:
    level = get_settings().log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


ProgrammeOption = typer.Option(..., "--programme", "-p", help="The programme's slug")


def run_server(host: str, port: int, workers: int, embedded_worker: bool) -> None:
    settings = get_settings()
    if workers > 1:
        uvicorn.run(
            "fidelia.api.asgi:app",
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
        )
        return
    from fidelia.api.app import create_app
    from fidelia.api.runtime import settle_heap

    # SQLite: the log copied back by a thread of the server, not by its writer's commits
    application = create_app(database(background_checkpoints=True), embedded_worker=embedded_worker)
    settle_heap()
    uvicorn.run(application, host=host, port=port, log_level=settings.log_level)
