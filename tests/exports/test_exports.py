"""Exports: ``GET /exports/{table}`` and ``fidelia export`` stream a programme's members,
events, ledger entries and redemptions as CSV or JSON lines, page by page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.exports import service
from fidelia.models import Programme
from tests.fixtures.factories import Api
from tests.privacy.conftest import buy, demo, enrol

__all__ = ["demo"]


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def test_members_as_csv_with_identities_tier_and_balances(
    demo: Api, api_factory: Callable[[Programme], Api], programme_factory: Callable[..., Programme]
) -> None:
    ann = enrol(demo, "ann.x@example.com", card="C-100")
    bob = enrol(demo, "bob.x@example.com")
    buy(demo, ann, "o-x1", "30.00")
    other = api_factory(programme_factory())
    enrol(other, "stranger@example.com")

    response = demo.get("/exports/members", params={"format": "csv"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = _csv(response.text)
    assert list(rows[0]) == list(service.TABLES["members"].columns)
    assert [r["id"] for r in rows] == [ann, bob]
    by_id = {r["id"]: r for r in rows}
    assert by_id[ann]["email"] == "ann.x@example.com"
    assert by_id[ann]["card"] == "C-100"
    assert by_id[ann]["first_name"] == "Ann"
    assert by_id[ann]["tier"]
    balances = json.loads(by_id[ann]["balances"])
    assert sum(b["available"] + b["pending"] for b in balances.values()) >= 30
    assert "stranger@example.com" not in response.text


def test_events_ledger_and_redemptions_as_jsonl(demo: Api) -> None:
    ann = enrol(demo, "ann.j@example.com")
    buy(demo, ann, "o-j1", "20.00")

    events = _jsonl(demo.get("/exports/events", params={"format": "jsonl"}).text)
    ledger = _jsonl(demo.get("/exports/ledger", params={"format": "jsonl"}).text)
    redemptions = demo.get("/exports/redemptions", params={"format": "jsonl"})

    assert sorted(e["type"] for e in events) == ["enrolment", "purchase"]
    assert {e["member_id"] for e in events} == {ann}
    assert next(e for e in events if e["type"] == "purchase")["reference"] == "o-j1"
    assert ledger
    assert sum(e["amount"] for e in ledger) == 0, "every posting sums to zero"
    assert {e["member_id"] for e in ledger if e["account"] == "member"} == {ann}
    assert redemptions.status_code == 200
    assert all(
        set(r) == set(service.TABLES["redemptions"].columns) for r in _jsonl(redemptions.text)
    )


def test_since_keeps_the_later_rows(demo: Api) -> None:
    enrol(demo, "early@example.com")
    later = datetime.now(UTC) + timedelta(hours=1)

    empty = demo.get("/exports/events", params={"format": "jsonl", "since": later.isoformat()})
    everything = demo.get(
        "/exports/events", params={"format": "jsonl", "since": "2000-01-01T00:00:00Z"}
    )

    assert empty.status_code == 200
    assert empty.text == ""
    assert len(_jsonl(everything.text)) == 1


def test_pages_cover_every_row_once(demo: Api, database: Database) -> None:
    ids = [enrol(demo, f"page{i}@example.com") for i in range(7)]

    with database.transaction(readonly=True) as session:
        pages = list(
            service.pages(
                session, programme=demo.programme, table=service.TABLES["members"], page=3
            )
        )

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [str(r["id"]) for p in pages for r in p] == ids


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/exports/customers", {}, "table"),
        ("/exports/members", {"format": "xlsx"}, "format"),
        ("/exports/members", {"since": "yesterday"}, "since"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    demo: Api, path: str, params: dict[str, str], field: str
) -> None:
    response = demo.get(path, params=params)

    assert response.status_code == 422
    assert field in response.text


def test_exports_need_the_admin_scope(demo: Api) -> None:
    assert demo.get("/exports/members", scope="read").status_code == 403
    assert demo.get("/exports/members", key=None).status_code == 401


# -- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
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
    invoke("programme", "create", "shop", "--name", "The Shop")
    yield invoke
    get_settings.cache_clear()


def test_cli_exports_to_a_file_and_refuses_an_unknown_table(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    cli("members", "enrol", "--programme", "shop", "--email", "cli@example.com")
    target = tmp_path / "members.jsonl"

    cli("export", "members", "--programme", "shop", "--format", "jsonl", "-o", str(target))
    unknown = cli("export", "customers", "--programme", "shop", ok=False)
    bad_since = cli("export", "events", "--programme", "shop", "--since", "2025-01-01", ok=False)

    (row,) = _jsonl(target.read_text())
    assert row["email"] == "cli@example.com"
    assert unknown.exit_code == 1
    assert "unknown table 'customers'" in unknown.output
    assert bad_since.exit_code == 1
    assert "since" in bad_since.output
