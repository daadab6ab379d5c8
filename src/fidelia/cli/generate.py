"""`fidelia generate`: write a deterministic synthetic data set (JSON Lines events)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from fidelia.cli.common import console
from fidelia.demo import generator


def generate(
    members: int = typer.Option(2000, min=1, max=1_000_000, help="How many members"),
    months: int = typer.Option(12, min=1, max=120, help="How many months of activity"),
    seed: int = typer.Option(42, help="Same seed, same file (byte for byte)"),
    end: datetime = typer.Option(
        generator.DEFAULT_END.isoformat(),
        formats=["%Y-%m-%d"],
        help="Last day of the period (the clock is never read)",
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        dir_okay=False,
        help="Output file (default: data/generated-<seed>.jsonl)",
    ),
) -> None:
    """Generate members and months of activity as events, for `fidelia events import`."""
    config = generator.GeneratorConfig(members=members, months=months, seed=seed, end=end.date())
    path = out or Path("data") / f"generated-{seed}.jsonl"
    started = time.perf_counter()
    dataset = generator.generate(config)
    count = generator.write_jsonl(dataset.events, path)
    seconds = time.perf_counter() - started

    table = Table("event type", "events", "share", title=f"{count:,} events in {path}")
    for event_type, n in dataset.counts().items():
        table.add_row(event_type, f"{n:,}", f"{n / count:.1%}")
    console.print(table)
    archetypes = ", ".join(f"{name} {n}" for name, n in dataset.archetypes().items())
    consents = ", ".join(
        f"{channel} {granted}/{asked}" for channel, (granted, asked) in dataset.consents().items()
    )
    console.print(
        f"{members:,} members ({archetypes}), {config.start} to {config.end}, seed {seed}\n"
        f"consents granted/asked: {consents}\n"
        f"{dataset.duplicates} duplicate enrolments (same email, other capitals: intake finds "
        f"the existing member), {dataset.referrals} referrals completed\n"
        f"written in {seconds:.1f} s; import with: fidelia events import {path} -p <programme>",
        highlight=False,
    )
