"""``fidelia members enrol``: the CLI door enrols as ``POST /members`` does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.models import Event, Member, MemberStatusChange, Voucher
from fidelia.rules.demo import programme_document


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIDELIA_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def count(url: str, model: Any) -> int:
    database = Database.from_url(url)
    try:
        with database.transaction(readonly=True) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    finally:
        database.dispose()


@pytest.fixture
def demo(db_url: str, tmp_path: Path) -> str:
    """Programme ``shop`` running the demo document (a welcome voucher on enrolment)."""
    assert run("db", "upgrade").exit_code == 0
    assert run("programme", "create", "shop", "--name", "Shop", "--currency", "EUR").exit_code == 0
    document = tmp_path / "demo.json"
    document.write_text(json.dumps(programme_document()), encoding="utf-8")
    applied = run("programme", "apply", str(document), "-p", "shop")
    assert applied.exit_code == 0, applied.output
    return "shop"


def test_members_enrol_runs_the_programme_and_prints_what_it_earned(demo: str, db_url: str) -> None:
    result = run("members", "enrol", "-p", demo, "--card", "4000 1234", "--first-name", "Ann")

    assert result.exit_code == 0, result.output
    assert "enrolled" in result.output
    assert "voucher_issued WELCOME-" in result.output
    assert "tier bronze" in result.output
    assert (count(db_url, Member), count(db_url, Event), count(db_url, Voucher)) == (1, 1, 1)
    assert count(db_url, MemberStatusChange) == 1


def test_a_retry_with_the_same_key_enrols_no_one_twice(demo: str, db_url: str) -> None:
    args = ("members", "enrol", "-p", demo, "--email", "b@example.com", "--idempotency-key", "k1")

    first, again = run(*args), run(*args)

    assert (first.exit_code, again.exit_code) == (0, 0)
    assert "a retry" in again.output
    assert (count(db_url, Member), count(db_url, Voucher)) == (1, 1)


def test_a_taken_identity_or_bad_input_is_one_red_line_and_writes_nothing(
    demo: str, db_url: str
) -> None:
    run("members", "enrol", "-p", demo, "--card", "C-1")

    taken = run("members", "enrol", "-p", demo, "--card", "c-1", "--email", "new@example.com")
    bad = run("members", "enrol", "-p", demo, "--email", "not an email")
    nothing = run("members", "enrol", "-p", demo, "--first-name", "Nobody")

    assert [r.exit_code for r in (taken, bad, nothing)] == [1, 1, 1]
    assert "card" in taken.output
    assert "email" in bad.output
    assert "card, email, phone or external id" in nothing.output
    assert "Traceback" not in taken.output + bad.output + nothing.output
    assert (count(db_url, Member), count(db_url, Event)) == (1, 1)
