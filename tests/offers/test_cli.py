"""`fidelia offers` and `fidelia plans` on a real SQLite database: list, give, sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.models import Member
from fidelia.models.offers import OfferTarget

Run = Callable[..., Any]
DOC = {
    "offers": [{"code": "gift", "name": "100 points", "kind": "points", "amount": 100}],
    "plans": [{"code": "club", "name": "Club", "period": "month", "price": "5", "currency": "USD"}],
}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("FIDELIA_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    invoke("programme", "create", "shop", "--name", "The Shop", "--currency", "USD")
    (tmp_path / "doc.yaml").write_text(yaml.safe_dump(DOC))
    invoke("programme", "apply", "doc.yaml", "-p", "shop")
    yield invoke
    get_settings.cache_clear()


def test_offers_give_and_list_and_plans_sweep(run: Run, tmp_path: Path) -> None:
    run("members", "enrol", "-p", "shop", "--email", "ann@example.org")
    database = Database.from_url(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with database.transaction(readonly=True) as session:
            member_id = session.scalars(select(Member.id)).one()
        given = run("offers", "give", "gift", "-p", "shop", "-m", str(member_id))
        assert "given to 1, 0 had it already" in given.output
        again = run("offers", "give", "gift", "-p", "shop", "-m", str(member_id))
        assert "given to 0, 1 had it already" in again.output
        with database.transaction(readonly=True) as session:
            assert session.scalars(select(OfferTarget.offer)).all() == ["gift"]
        listed = run("offers", "list", "-p", "shop").output
        assert "gift" in listed
        assert "points" in listed
        unknown = run("offers", "give", "nope", "-p", "shop", "-m", str(member_id), ok=False)
        assert unknown.exit_code != 0
        assert "nope" in unknown.output
        assert "club" in run("plans", "list", "-p", "shop").output
        assert "0 subscriptions changed state" in run("plans", "sweep", "-p", "shop").output
    finally:
        database.dispose()
