"""`fidelia user create`: the first owner of a programme, from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.users import service as users
from fidelia.users import sessions
from fidelia.users.service import Role


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIDELIA_DATABASE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["programme", "create", "shop", "--name", "Shop"]).exit_code == 0
    yield url
    get_settings.cache_clear()


def test_user_create_makes_an_owner_who_can_sign_in(db_url: str) -> None:
    args = ["user", "create", "--programme", "shop", "--email", "Owner@Example.com"]
    result = CliRunner().invoke(app, [*args, "--password-stdin"], input="a long passphrase\n")
    assert result.exit_code == 0, result.output
    assert "owner@example.com is owner of shop" in result.output
    database = Database.from_url(db_url)
    with database.transaction() as session:
        user = users.find_by_email(session, email="owner@example.com")
        assert user is not None
        ((programme, role),) = users.programmes_of(session, user_id=user.id)
        assert (programme.slug, role) == ("shop", Role.owner)
        signed = sessions.sign_in(
            session,
            email="owner@example.com",
            password="a long passphrase",
            ip="cli",
            now=user.created_at,
        )
        assert signed.token is not None
    database.dispose()


def test_user_create_refuses_bad_input_with_a_clear_line(db_url: str) -> None:
    runner = CliRunner()
    base = ["user", "create", "--email", "a@example.com", "--password-stdin"]
    unknown = runner.invoke(app, [*base, "--programme", "nope"], input="a long passphrase\n")
    assert unknown.exit_code == 1
    assert "programme 'nope' does not exist" in unknown.output
    short = runner.invoke(app, [*base, "--programme", "shop"], input="short\n")
    assert short.exit_code == 1
    assert "password: at least 10 characters" in short.output
    role = runner.invoke(app, [*base, "--programme", "shop", "--role", "boss"], input="x\n")
    assert role.exit_code == 2
    database = Database.from_url(db_url)
    with database.transaction(readonly=True) as session:
        assert users.find_by_email(session, email="a@example.com") is None
    database.dispose()
