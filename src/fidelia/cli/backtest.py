"""`fidelia backtest`: what a candidate programme would have done over history, side by side."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug
from fidelia.cli.programme import load_document
from fidelia.intake import effects as rules
from fidelia.models import Programme
from fidelia.programmes import documents
from fidelia.rules import history
from fidelia.rules.backtest import BacktestReport, backtest, load_cdnow
from fidelia.rules.compiler import CompiledProgramme, compile_programme
from fidelia.rules.state import EngineEvent


def _compile(programme: Programme, path: Path) -> CompiledProgramme:
    document = documents.canonical(programme, documents.parse(load_document(path)), None)
    return compile_programme(documents.rules_of(programme, document))


def _aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=zone))


def backtest_command(
    candidate: Path = typer.Option(
        ..., exists=True, dir_okay=False, help="Candidate programme document (YAML or JSON)"
    ),
    baseline: str = typer.Option(
        "live", help="'live' (the programme's live version) or a document file"
    ),
    programme: str = typer.Option(
        None, "--programme", "-p", help="The programme's slug (needed for 'live' and stored events)"
    ),
    events: Path = typer.Option(
        None, exists=True, dir_okay=False, help="Replay this JSON Lines file of events"
    ),
    cdnow: Path = typer.Option(
        None, exists=True, dir_okay=False, help="Replay the CDNOW purchase log"
    ),
    start: datetime = typer.Option(
        None, "--from", help="Only events from this date (programme time)"
    ),
    end: datetime = typer.Option(
        None, "--to", help="Only events before this date (programme time)"
    ),
    value_per_point: Decimal = typer.Option(
        Decimal("0.01"), help="Money value of one point, for the liability"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Replay history through the baseline and the candidate, in memory; write nothing."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        prog = programme_by_slug(session, programme) if programme else _scratch_programme()
        zone = ZoneInfo(prog.timezone)
        cand = _compile(prog, candidate)
        if baseline == "live":
            if not programme:
                raise typer.BadParameter(
                    "--baseline live needs --programme", param_hint="--baseline"
                )
            base = rules.compiled_for(session, prog)
            if base is None:
                raise typer.BadParameter(
                    "the programme has no live version yet", param_hint="--baseline"
                )
        else:
            base = _compile(prog, Path(baseline))
        source: Iterator[tuple[str, EngineEvent]]
        if cdnow is not None:
            source = load_cdnow(cdnow, tz=zone)
        elif events is not None:
            source = history.file_events(events)
        elif programme:
            source = history.stored_events(
                session, programme=prog, start=_aware(start, zone), end=_aware(end, zone)
            )
        else:
            raise typer.BadParameter("give --events, --cdnow, or --programme for its stored events")
        lo, hi = _aware(start, zone), _aware(end, zone)
        chosen = [
            (m, e)
            for m, e in source
            if (lo is None or e.occurred_at >= lo) and (hi is None or e.occurred_at < hi)
        ]
        started = time.perf_counter()
        report = backtest(chosen, base, cand, value_per_point=value_per_point)
        seconds = time.perf_counter() - started
    if as_json:
        typer.echo(json.dumps({**report.as_dict(), "seconds": round(seconds, 3)}, indent=2))
        return
    _print(report, seconds)


def _scratch_programme() -> Programme:
    """A programme that is not stored, for back-tests of two files over a file of events."""
    return Programme(
        slug="scratch",
        name="scratch",
        currency="EUR",
        timezone="Europe/Paris",
        locale="fr-FR",
        country="FR",
        settings={},
        live_version=0,
    )


def _print(report: BacktestReport, seconds: float) -> None:
    data: dict[str, Any] = report.as_dict()
    base, cand = data["baseline"], data["candidate"]
    console.print(
        f"replayed {base['events']:,} events of {data['members']:,} members in {seconds:.2f} s"
    )
    table = Table("rule", "wallet", "baseline", "candidate", "change", title="issued per rule")
    for rule in sorted(set(base["per_rule"]) | set(cand["per_rule"])):
        b, c = base["per_rule"].get(rule, {}), cand["per_rule"].get(rule, {})
        before, after = Decimal(str(b.get("amount", 0))), Decimal(str(c.get("amount", 0)))
        table.add_row(
            rule,
            c.get("wallet", b.get("wallet", "")),
            f"{before:,}",
            f"{after:,}",
            f"{after - before:+,}",
        )
    console.print(table)
    summary = Table("figure", "baseline", "candidate", title="programme")
    for label, key in (
        ("redeemable points", "redeemable_points"),
        ("liability", "liability"),
        ("members awarded", "members_awarded"),
    ):
        summary.add_row(label, str(base[key]), str(cand[key]))
    for pct in base["points_per_member"]:
        summary.add_row(
            f"points per member {pct}",
            str(base["points_per_member"][pct]),
            str(cand["points_per_member"][pct]),
        )
    console.print(summary)
    console.print(f"members whose points change: {data['members_affected']:,}")
    for title, rows in (("biggest winners", data["winners"]), ("biggest losers", data["losers"])):
        if rows:
            movers = Table("member", "baseline", "candidate", "delta", title=title)
            for r in rows:
                movers.add_row(
                    r["member"], str(r["baseline"]), str(r["candidate"]), f"{r['delta']:+}"
                )
            console.print(movers)
