"""`fidelia report kpis|cohorts|liability|refresh` against a temporary SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelia.cli import common
from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.intake.service import ingest_payloads
from fidelia.programmes import service as programmes
from tests.fixtures.events import enrolment, line, purchase


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIDELIA_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    # the CLI's console was made when first imported (maybe by another test): widen it too
    monkeypatch.setattr(common.console, "width", 200)
    get_settings.cache_clear()
    run("db", "upgrade")
    run("programme", "create", "shop", "--name", "The Shop", "--currency", "EUR")
    db = Database.from_url(url)
    with db.transaction() as session:
        found = programmes.get_by_slug(session, slug="shop")
        joined = enrolment({"email": "a@example.com"}, channel="store", store="s1")
        member = {"email": "a@example.com"}
        bodies: list[dict[str, Any]] = [joined]
        bodies += [
            purchase(member, order_id=f"o{i}", lines=[line("x", 1, "12.00")]) for i in (1, 2)
        ]
        anonymous = purchase({}, order_id="anon", lines=[line("x", 1, "3.00")])
        del anonymous["member"]
        outcomes = ingest_payloads(session, programme=found, payloads=[*bodies, anonymous])
        assert all(o.status == "accepted" for o in outcomes), outcomes
    db.dispose()
    yield "shop"
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def test_report_kpis_prints_the_headline_and_the_series(shop: str) -> None:
    out = run("report", "kpis", "-p", shop, "--start", "2025-01-01", "--end", "2025-12-31",
              "--by", "store").output  # fmt: skip
    assert "member orders" in out
    assert "non member orders" in out
    assert "24.00" in out  # two member purchases of 12.00
    assert "3.00" in out  # the anonymous one
    assert "2025-03-01" in out  # the month of the purchases
    as_json = run("report", "kpis", "-p", shop, "--start", "2025-01-01", "--end", "2025-12-31",
                  "--json").output  # fmt: skip
    assert '"member_orders": 2' in as_json


def test_report_cohorts_liability_and_refresh(shop: str) -> None:
    out = run(
        "report", "cohorts", "-p", shop, "--start", "2025-01-01", "--end", "2025-12-31"
    ).output
    assert "2025-03" in out
    out = run("report", "liability", "-p", shop, "--at", "2025-06-01T00:00:00Z").output
    assert "points at 2025-06-01" in out
    assert "Forecast" in out
    assert "aggregates up to" in run("report", "refresh", "-p", shop).output


def test_report_bad_input_says_which_option(shop: str) -> None:
    out = run("report", "kpis", "-p", shop, "--grain", "year", code=2).output
    assert "--grain" in out
    out = run("report", "kpis", "-p", shop, "--start", "2025-03-01", "--end", "2025-01-01",
              code=1).output  # fmt: skip
    assert "end" in out
    out = run("report", "liability", "-p", shop, "--wallet", "nope", code=1).output
    assert "nope" in out


def test_report_tiers_prints_the_buckets_and_names_a_bad_grain(shop: str) -> None:
    out = run("report", "tiers", "-p", shop, "--start", "2025-01-01", "--end", "2025-03-31").output
    assert "Members per tier at the end of each month" in out
    assert "2025-03-01" in out
    as_json = run("report", "tiers", "-p", shop, "--start", "2025-01-01", "--end", "2025-01-31",
                  "--grain", "week", "--json").output  # fmt: skip
    assert '"grain": "week"' in as_json
    out = run("report", "tiers", "-p", shop, "--grain", "year", code=2).output
    assert "--grain" in out
