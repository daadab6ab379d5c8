"""`fidelia report clv` and `fidelia report lift`, run against a temporary SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("FIDELIA_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    invoke("db", "upgrade")
    yield invoke
    get_settings.cache_clear()


@pytest.mark.skipif(not (DATA / "cdnow_sample.txt").exists(), reason="no CDNOW sample")
def test_report_clv_on_the_imported_sample(cli: Any, tmp_path: Path) -> None:
    cli("programme", "create", "cd", "--name", "CDNOW", "--currency", "USD",
        "--timezone", "America/New_York")  # fmt: skip
    lines = ["customer_id date number_of_cds dollar_value"]
    for text in (DATA / "cdnow_sample.txt").read_text(encoding="ascii").splitlines():
        cells = text.split()
        lines.append(" ".join((cells[0], *cells[2:])))
    path = tmp_path / "sample.txt"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    cli("events", "import", str(path), "-p", "cd", "--format", "cdnow", "--enrol-unknown")

    out = cli("report", "clv", "-p", "cd", "--as-of", "1997-10-01", "--json").output
    body = json.loads(out)
    assert round(body["bgnbd"]["r"], 3) == 0.243
    assert round(body["gamma_gamma"]["p"], 2) == 6.25
    table = cli("report", "clv", "-p", "cd", "--as-of", "1998-07-01", "--holdout-days", "273")
    assert "BG/NBD" in table.output
    assert "Holdout 1997-10-01" in table.output
    bad = cli("report", "clv", "-p", "cd", "--as-of", "July", code=2)
    assert "--as-of" in bad.output


def test_report_clv_on_an_empty_programme_says_what_is_missing(cli: Any) -> None:
    cli("programme", "create", "empty", "--name", "Empty", "--currency", "EUR")
    failed = cli("report", "clv", "-p", "empty", code=1)
    assert "at least 30 customers" in failed.output


@pytest.mark.skipif(not (DATA / "hillstrom.csv.gz").exists(), reason="no Hillstrom file")
def test_report_lift_on_hillstrom(cli: Any) -> None:
    path = str(DATA / "hillstrom.csv.gz")
    out = cli("report", "lift", path, "--group", "segment", "--control", "No E-Mail",
              "--rate", "conversion", "--mean", "spend").output  # fmt: skip
    assert "Mens" in out  # the narrow test console wraps "Mens E-Mail"
    assert "Womens" in out
    assert "+0.7698" in out  # men's e-mail: spend per customer, treated minus control
    missing = cli("report", "lift", str(DATA / "hillstrom.csv.gz"), "--group", "segment",
                  "--control", "Nobody", "--rate", "visit", code=2)  # fmt: skip
    assert "Nobody" in missing.output
