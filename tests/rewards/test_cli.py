"""`fidelia vouchers`, run against a temporary SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.migrations import upgrade
from fidelia.models import Programme, Voucher
from fidelia.rewards import pools
from fidelia.rewards.schemas import PoolIn
from tests.fixtures.factories import count_rows, make_programme


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIDELIA_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    database = Database.from_url(url)
    upgrade(database.engine)
    yield database
    database.dispose()
    get_settings.cache_clear()


def with_pool(database: Database, pattern: str | None) -> Programme:
    programme = make_programme(database)
    data = PoolIn(
        code="printed",
        name="Printed",
        pattern=pattern,
        discount_type="amount",
        discount_value=Decimal(5),
    )
    with database.transaction() as session:
        pools.create_pool(session, programme=programme, data=data)
    return programme


def test_import_codes_from_a_file_all_or_nothing(cli_db: Database, tmp_path: Path) -> None:
    p = with_pool(cli_db, None)
    good = tmp_path / "codes.txt"
    good.write_text("# printed in May\nMAY-0001\nmay-0002\n\n")
    runner = CliRunner()
    result = runner.invoke(
        app, ["vouchers", "import-codes", str(good), "--pool", "printed", "-p", p.slug]
    )
    assert result.exit_code == 0, result.output
    assert "imported 2 codes" in result.output
    clash = tmp_path / "clash.txt"
    clash.write_text("MAY-0003\nMAY-0001\n")
    result = runner.invoke(
        app, ["vouchers", "import-codes", str(clash), "--pool", "printed", "-p", p.slug]
    )
    assert result.exit_code != 0
    assert count_rows(cli_db, Voucher, Voucher.programme_id == p.id) == 2


def test_generate_writes_the_codes_and_pools_lists_them(cli_db: Database, tmp_path: Path) -> None:
    p = with_pool(cli_db, "MAY-XXXX-XXXX")
    out = tmp_path / "made.txt"
    runner = CliRunner()
    result = runner.invoke(
        app, ["vouchers", "generate", "20", "--pool", "printed", "-p", p.slug, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(set(out.read_text().split())) == 20
    listed = runner.invoke(app, ["vouchers", "pools", "-p", p.slug])
    assert "printed" in listed.output
    assert "20" in listed.output
