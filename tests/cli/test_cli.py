"""The operator's CLI, run against a temporary SQLite database."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fidelia.cli.common import console
from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.jobs import service as jobs
from fidelia.models import ApiKey, Event, Member

Run = Callable[..., Any]


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIDELIA_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def run(db_url: str) -> Run:
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def ready(run: Run) -> str:
    """A migrated database with programme ``shop``."""
    run("db", "upgrade")
    run("programme", "create", "shop", "--name", "The Shop", "--currency", "USD")
    return "shop"


def database_of(url: str) -> Database:
    return Database.from_url(url)


def count(url: str, model: type) -> int:
    from sqlalchemy import func, select

    db = database_of(url)
    try:
        with db.transaction(readonly=True) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    finally:
        db.dispose()


def test_db_upgrade_creates_the_schema_and_is_repeatable(run: Run, db_url: str) -> None:
    first = run("db", "upgrade")
    again = run("db", "upgrade")

    assert "up to date" in first.output
    assert "up to date" in again.output
    assert count(db_url, Member) == 0


def test_programme_create_and_list(run: Run, ready: str) -> None:
    listed = run("programme", "list").output

    assert "shop" in listed
    assert "The Shop" in listed
    assert "USD" in listed


def test_programme_create_refuses_a_bad_currency_and_a_taken_slug(run: Run, ready: str) -> None:
    bad = run("programme", "create", "other", "--name", "x", "--currency", "XXY", ok=False)
    taken = run("programme", "create", "shop", "--name", "x", ok=False)

    assert bad.exit_code == 1
    assert "currency" in bad.output
    assert taken.exit_code == 1
    assert "exists already" in taken.output
    assert "Traceback" not in taken.output


def test_apikey_create_list_revoke(run: Run, ready: str, db_url: str) -> None:
    created = run("apikey", "create", "-p", ready, "--name", "POS Lyon", "--scope", "admin").output
    secret = re.search(r"fid_\w+_\S+", created)
    key_id = re.search(r"key ([0-9a-f-]{36})", created)
    assert secret is not None
    assert key_id is not None

    listed = run("apikey", "list", "-p", ready).output
    assert "POS" in listed
    assert "Lyon" in listed
    assert key_id.group(1) in listed
    assert secret.group(0) not in listed

    revoked = run("apikey", "revoke", key_id.group(1), "-p", ready).output
    assert "revoked" in revoked
    again = run("apikey", "revoke", key_id.group(1), "-p", ready, ok=False)
    assert again.exit_code == 1
    assert "already revoked" in again.output
    assert count(db_url, ApiKey) == 1


def test_apikey_for_an_unknown_programme_fails_cleanly(run: Run, ready: str) -> None:
    result = run("apikey", "create", "-p", "nope", "--name", "x", ok=False)

    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_members_import_and_events_import(
    run: Run, ready: str, db_url: str, tmp_path: Path
) -> None:
    members = tmp_path / "members.csv"
    members.write_text("card,email,consent_email\nC1,a@example.com,yes\nC2,bad,no\n")
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": f"e{i}",
                    "type": "page_view",
                    "occurred_at": "2025-01-01T10:00:00Z",
                    "member": {"card": card},
                }
            )
            for i, card in enumerate(["C1", "C1", "C9"])
        )
    )

    imported = run("members", "import", str(members), "-p", ready).output
    sent = run("events", "import", str(events), "-p", ready).output
    resent = run("events", "import", str(events), "-p", ready).output

    assert "1 accepted" in imported
    assert "1 rejected" in imported
    assert "2 accepted" in sent
    assert "1 rejected" in sent
    assert "unknown_member" in sent
    assert "2 already there" in resent
    assert (tmp_path / "members.csv.rejects.csv").read_text().startswith("line,id,error,detail")
    assert count(db_url, Member) == 1
    assert count(db_url, Event) == 3  # the imported member's enrolment, then two page views


def test_events_import_can_enrol_unknown_members(
    run: Run, ready: str, db_url: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.csv"
    events.write_text(
        "id,type,occurred_at,member_email\nx1,page_view,2025-01-01T10:00:00Z,new@example.com\n"
    )

    output = run("events", "import", str(events), "-p", ready, "--enrol-unknown").output

    assert "1 accepted" in output
    assert count(db_url, Member) == 1


def test_an_import_of_an_unknown_format_fails_cleanly(run: Run, ready: str, tmp_path: Path) -> None:
    path = tmp_path / "events.xml"
    path.write_text("<x/>")

    result = run("events", "import", str(path), "-p", ready, ok=False)

    assert result.exit_code == 1
    assert "format" in result.output


def test_jobs_list_shows_jobs_and_counts(
    run: Run, ready: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = database_of(db_url)
    with db.transaction() as session:
        job_id = str(jobs.enqueue(session, kind="cli.test.unhandled", max_attempts=1).id)
    jobs.run_due(db)
    db.dispose()

    narrow = run("jobs", "list").output  # 80 columns: the id for `jobs retry` must be whole
    monkeypatch.setattr(console, "width", 200)
    listed = run("jobs", "list").output
    pending_only = run("jobs", "list", "--status", "pending").output
    retried = run("jobs", "retry", job_id).output

    assert job_id in narrow
    assert "dead: 1" in narrow
    assert "cli.test.unhandled" in listed
    assert "no handler" in listed
    assert job_id not in pending_only
    assert "due again" in retried
    assert "pending: 1" in run("jobs", "list").output


def all_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from all_commands(sub, (*path, name))


COMMANDS = list(all_commands(typer.main.get_command(app)))


def test_the_cli_has_the_commands_of_the_foundation() -> None:
    required = {
        ("serve",),
        ("worker",),
        ("db", "upgrade"),
        ("programme", "create"),
        ("programme", "list"),
        ("apikey", "create"),
        ("apikey", "list"),
        ("apikey", "revoke"),
        ("members", "import"),
        ("events", "import"),
        ("jobs", "list"),
    }

    assert required <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "fidelia")
def test_every_command_has_help(run: Run, command: tuple[str, ...]) -> None:
    result = run(*command, "--help")

    assert "Usage:" in result.output
    assert "--help" in result.output


def test_every_command_runs_with_the_collector_of_a_long_running_process(run: Run) -> None:
    """Imports and rebuilds make ORM objects by the thousand: with Python's default young
    threshold (700) an import spent half its time in collections (fidelia.api.runtime)."""
    import gc

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, before[1], before[2])
        run("db", "upgrade")
        assert gc.get_threshold()[0] == 10_000
    finally:
        gc.set_threshold(*before)
