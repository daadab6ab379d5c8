"""`fidelia backtest` over an events file, the CDNOW log and a programme's stored events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.migrations import upgrade
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import make_programme

CDNOW = Path(__file__).parents[2].parent / "shared" / "data" / "cdnow_master.txt"


def _rules(rate: int) -> dict[str, Any]:
    award = {"kind": "spend", "wallet": "points", "rate": rate, "rounding": "floor"}
    return {"rules": [{"id": "base", "name": f"1 € = {rate} points", "award": award}]}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"base": tmp_path / "base.yaml", "candidate": tmp_path / "candidate.yaml"}
    paths["base"].write_text(yaml.safe_dump(_rules(1)))
    paths["candidate"].write_text(yaml.safe_dump(_rules(3)))
    return paths


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIDELIA_DATABASE_URL", url)
    get_settings.cache_clear()
    database = Database.from_url(url)
    upgrade(database.engine)
    yield database
    database.dispose()
    get_settings.cache_clear()


def _run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["backtest", *args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def test_backtest_of_an_events_file_compares_both_programmes(
    cli_db: Database, files: dict[str, Path], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    rows = [
        purchase({"card": "A1"}, lines=[line("x", 1, "10.50")]),
        purchase({"card": "B2"}, lines=[line("y", 2, "7.25")]),
    ]
    events.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    report = _run(
        "--candidate",
        str(files["candidate"]),
        "--baseline",
        str(files["base"]),
        "--events",
        str(events),
    )

    assert report["members"] == 2
    assert report["baseline"]["per_wallet"] == {"points": 10 + 14}
    assert report["candidate"]["per_wallet"] == {"points": 31 + 43}
    assert report["winners"][0]["member"] == "card:b2"


@pytest.mark.skipif(
    not CDNOW.is_file(),
    reason=f"the CDNOW data set is not at {CDNOW} (see shared/data/README.md)",
)
def test_backtest_of_cdnow_matches_an_independent_sum(
    cli_db: Database, files: dict[str, Path]
) -> None:
    expected = 0
    with CDNOW.open() as handle:
        for text in handle:
            parts = text.split()
            if len(parts) == 4 and parts[0].isdigit():
                expected += int(Decimal(parts[3]).to_integral_value(rounding=ROUND_FLOOR))

    report = _run(
        "--candidate",
        str(files["candidate"]),
        "--baseline",
        str(files["base"]),
        "--cdnow",
        str(CDNOW),
    )

    assert report["baseline"]["events"] == 69_659
    assert report["members"] == 23_570
    assert report["baseline"]["per_wallet"]["points"] == expected


def test_backtest_against_the_live_version_over_stored_events(
    cli_db: Database, files: dict[str, Path]
) -> None:
    from fidelia.intake import service as intake
    from fidelia.programmes import documents

    programme = make_programme(cli_db)
    with cli_db.transaction() as session:
        documents.apply(session, programme=programme, raw=_rules(1), actor="test")
    with cli_db.transaction() as session:
        from fidelia.models import Programme

        live = session.get(Programme, programme.id)
        assert live is not None
        payloads = [
            purchase({"card": f"C{n}"}, lines=[line("x", 1, f"{10 * n}.00")]) for n in (1, 2, 3)
        ]
        outcomes = intake.ingest_payloads(
            session, programme=live, payloads=payloads, enrol_unknown="active"
        )
        assert [o.status for o in outcomes] == ["accepted"] * 3

    report = _run("--candidate", str(files["candidate"]), "--programme", programme.slug)

    assert report["baseline"]["per_wallet"] == {"points": 60}
    assert report["candidate"]["per_wallet"] == {"points": 180}
    assert report["members_affected"] == 3
