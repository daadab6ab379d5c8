"""`fidelia vouchers`: stock a pool with generated or imported codes, list pools, and show
donation totals."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug
from fidelia.rewards import donations, pools

vouchers_app = typer.Typer(help="Voucher pools and codes.", no_args_is_help=True)
ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


@vouchers_app.command("import-codes")
def import_codes(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="One code per line"),
    pool: str = typer.Option(..., "--pool", help="The pool's code"),
    programme: str = ProgrammeOpt,
    bearer: bool = typer.Option(
        False, help="Usable now by anyone (printed codes) instead of stocking the pool"
    ),
) -> None:
    """Import codes from a file into a pool: all of them, or none if one is bad or taken."""
    raw = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    codes = [c for c in raw if c and not c.startswith("#")]
    db = database()
    with failing_cleanly(), db.transaction() as session:
        found = programme_by_slug(session, programme)
        made = pools.import_codes(session, programme=found, code=pool, raw=codes, bearer=bearer)
    console.print(f"imported {len(made)} codes into pool [bold]{pool}[/bold]")


@vouchers_app.command("generate")
def generate(
    count: int = typer.Argument(..., min=1, max=100_000),
    pool: str = typer.Option(..., "--pool", help="The pool's code"),
    programme: str = ProgrammeOpt,
    output: Path = typer.Option(None, "--output", "-o", help="Write the codes to this file"),
) -> None:
    """Stock a pool with COUNT codes from its pattern (optionally written to a file)."""
    db = database()
    with failing_cleanly(), db.transaction() as session:
        found = programme_by_slug(session, programme)
        made = pools.generate_codes(session, programme=found, code=pool, count=count)
    if output is not None:
        output.write_text("\n".join(made) + "\n", encoding="utf-8")
    console.print(f"generated {len(made)} codes in pool [bold]{pool}[/bold]")


@vouchers_app.command("pools")
def list_pools(programme: str = ProgrammeOpt) -> None:
    """The programme's pools and how many codes each holds, by status."""
    db = database()
    with failing_cleanly(), db.transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        rows = pools.list_pools(session, programme=found)
        counts = pools.counts(session, pool_ids=[p.id for p in rows])
    table = Table("pool", "discount", "pattern", "available", "active", "used", "expired")
    for pool in rows:
        c = counts.get(pool.id, {})
        off = f"{pool.discount_value}{' %' if pool.discount_type == 'percent' else ''}"
        statuses = ("available", "active", "used", "expired")
        table.add_row(pool.code, off, pool.pattern or "-", *(str(c.get(s, 0)) for s in statuses))
    console.print(table)


@vouchers_app.command("donations")
def donation_totals(programme: str = ProgrammeOpt) -> None:
    """Donations per association: count, points converted, money given."""
    db = database()
    with failing_cleanly(), db.transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        rows = donations.totals(session, programme=found)
    table = Table("association", "donations", "points", "value")
    for row in rows:
        table.add_row(row.association, str(row.donations), str(row.points), str(row.value))
    console.print(table)
