"""`fidelia offers` (list, give) and `fidelia plans` (list, sweep): the offers and the paid
plans of a programme, from the command line."""

from __future__ import annotations

import uuid

import typer
from rich.table import Table

from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug
from fidelia.offers import service as offers
from fidelia.offers.schemas import GiveIn
from fidelia.plans import service as plans
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import LIVE_STATES

offers_app = typer.Typer(help="Personal and first-N offers.", no_args_is_help=True)
plans_app = typer.Typer(help="Paid membership plans and subscriptions.", no_args_is_help=True)
ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


@offers_app.command("list")
def list_command(programme: str = ProgrammeOpt) -> None:
    """Every offer of the live document with its status and conversion."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = offers.list_offers(session, programme=programme_by_slug(session, programme))
    table = Table("code", "kind", "status", "offered", "used", "rate", "revenue", "slots left")
    for o in found:
        c = o.conversion
        left = "" if o.slots_left is None else str(o.slots_left)
        table.add_row(
            o.offer.code,
            o.offer.kind,
            o.status,
            str(c.offered),
            str(c.used),
            str(c.rate),
            str(c.revenue),
            left,
        )
    console.print(table)


@offers_app.command("give")
def give_command(
    code: str,
    programme: str = ProgrammeOpt,
    member: list[str] = typer.Option([], "--member", "-m", help="A member id (repeatable)"),
    segment: str | None = typer.Option(None, "--segment", "-s", help="Every member of a segment"),
) -> None:
    """Give an offer to members (ids) or to a segment's current members."""
    with failing_cleanly(), database().transaction() as session:
        found = programme_by_slug(session, programme)
        data = GiveIn(member_ids=[uuid.UUID(m) for m in member], segment=segment)
        result = offers.give(session, programme=found, code=code, data=data, actor="cli")
    console.print(f"{result.offer}: given to {result.given}, {result.already} had it already")


@plans_app.command("list")
def plans_command(programme: str = ProgrammeOpt) -> None:
    """The plans of the live document with their subscriptions per state."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        counts = plans.counts(session, programme=found)
        defs = sections_for(session, found).plans
    table = Table("code", "period", "price", "trial days", "live", "by status")
    for code, plan in sorted(defs.items()):
        by = counts.get(code, {})
        live = sum(n for s, n in by.items() if s in LIVE_STATES)
        table.add_row(
            code,
            plan.period,
            f"{plan.price} {plan.currency}",
            str(plan.trial_days),
            str(live),
            ", ".join(f"{s}: {n}" for s, n in sorted(by.items())),
        )
    console.print(table)


@plans_app.command("sweep")
def sweep_command(programme: str = ProgrammeOpt) -> None:
    """Write the lapses the calendar reached (past due, expired), dated when they happened."""
    with failing_cleanly(), database().transaction() as session:
        moved = plans.sweep(session, programme=programme_by_slug(session, programme))
    console.print(f"{moved} subscriptions changed state")
