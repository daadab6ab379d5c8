"""`fidelia report kpis|cohorts|liability|tiers`: the programme's KPIs as rich tables (or
JSON)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import typer
from rich.table import Table

from fidelia.analytics import aggregates, cohorts, kpis, liability
from fidelia.analytics import tiers as tiers_over_time
from fidelia.analytics.schemas import KpisOut
from fidelia.cli.common import console, database, err_console, failing_cleanly, programme_by_slug
from fidelia.kit.clock import ensure_aware, utcnow

GRAINS = ("day", "week", "month")
GROUPS = ("none", "store", "channel")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {option}: {exc} (expected YYYY-MM-DD)")
        raise typer.Exit(2) from exc


def _period(start: str | None, end: str | None) -> tuple[date, date]:
    last = _day(end, "--end") or utcnow().date()
    first = _day(start, "--start") or last - timedelta(days=364)
    return first, last


def _fmt(value: Any, pct: bool = True) -> str:
    """A figure for a table: rates as percentages (``pct``), other floats to 2 places."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if pct else f"{value:.2f}"
    return str(value)


def kpis_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    start: str = typer.Option(None, "--start", help="First day YYYY-MM-DD (default: end - 364)"),
    end: str = typer.Option(None, "--end", help="Last day YYYY-MM-DD, included (default: today)"),
    grain: str = typer.Option("month", help="Series by day, week or month"),
    group_by: str = typer.Option("none", "--by", help="Sales by none, store or channel"),
    activation_days: int = typer.Option(30, min=1, max=365, help="Activation window"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Headline KPIs, the series, sales by store or channel, points economy (UTC days)."""
    for name, value, allowed in (("--grain", grain, GRAINS), ("--by", group_by, GROUPS)):
        if value not in allowed:
            err_console.print(f"[red]error:[/red] {name}: one of {', '.join(allowed)}")
            raise typer.Exit(2)
    first, last = _period(start, end)
    with failing_cleanly(), database().transaction() as session:
        answer = kpis.compute(
            session, programme=programme_by_slug(session, programme), start=first, end=last,
            grain=grain, group_by=group_by, activation_days=activation_days,  # type: ignore[arg-type]
        )  # fmt: skip
    if as_json:
        console.print_json(answer.model_dump_json())
        return
    _print_kpis(answer)


def _print_kpis(answer: KpisOut) -> None:
    title = f"KPIs {answer.start} to {answer.end} ({answer.currency}, UTC days)"
    table = Table("KPI", "value", title=title)
    for name, value in answer.headline.model_dump(exclude={"activation"}).items():
        pct = name.endswith(("_rate", "_share"))
        table.add_row(name.replace("_", " "), _fmt(value, pct))
    act = answer.headline.activation
    rate = f"{act.activated}/{act.enrolled} ({_fmt(act.rate)})"
    table.add_row(f"activation within {act.days} d", rate)
    console.print(table)
    series = Table("bucket", "enrolments", "active", "member orders", "member sales",
                   "non-member orders", "non-member sales", title=f"By {answer.grain}")  # fmt: skip
    for s in answer.series:
        series.add_row(str(s.bucket), str(s.enrolments), str(s.active_members),
                       str(s.member_orders), str(s.member_sales), str(s.non_member_orders),
                       str(s.non_member_sales))  # fmt: skip
    console.print(series)
    if answer.groups:
        groups = Table(answer.group_by, "enrolments", "member orders", "member sales",
                       "non-member orders", "non-member sales", "basket (members)")  # fmt: skip
        for g in answer.groups:
            groups.add_row(g.key or "-", str(g.enrolments), str(g.member_orders),
                           str(g.member_sales), str(g.non_member_orders),
                           str(g.non_member_sales), _fmt(g.basket_member))  # fmt: skip
        console.print(groups)
    points = Table("wallet", "issued", "redeemed", "expired", "outstanding", "liability",
                   "redemption rate", "breakage rate", title="Points economy")  # fmt: skip
    for w in answer.points:
        points.add_row(w.wallet, str(w.issued), str(w.redeemed), str(w.expired),
                       str(w.outstanding_at_end), _fmt(w.liability_money),
                       _fmt(w.redemption_rate), _fmt(w.breakage_rate))  # fmt: skip
    console.print(points)


def cohorts_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    start: str = typer.Option(None, "--start", help="First enrolment day YYYY-MM-DD"),
    end: str = typer.Option(None, "--end", help="Last enrolment day YYYY-MM-DD, included"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Retention by enrolment month: share of each cohort buying 1..12 months later."""
    first, last = _period(start, end)
    with failing_cleanly(), database().transaction() as session:
        found = programme_by_slug(session, programme)
        answer = cohorts.compute(session, programme=found, start=first, end=last)
    if as_json:
        console.print_json(answer.model_dump_json())
        return
    table = Table("cohort", "members", "repeat", *[f"m{k}" for k in range(1, 13)],
                  title="Retention by enrolment month")  # fmt: skip
    for c in answer.cohorts:
        table.add_row(c.cohort.strftime("%Y-%m"), str(c.members), str(c.repeat_members),
                      *[_fmt(r) for r in c.retention])  # fmt: skip
    console.print(table)


def tiers_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    start: str = typer.Option(None, "--start", help="First day YYYY-MM-DD (default: end - 364)"),
    end: str = typer.Option(None, "--end", help="Last day YYYY-MM-DD, included (default: today)"),
    grain: str = typer.Option("month", help="Buckets: day, week or month"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Members per tier at the end of each bucket, joined, upgrades and downgrades (UTC)."""
    if grain not in GRAINS:
        err_console.print(f"[red]error:[/red] --grain: one of {', '.join(GRAINS)}")
        raise typer.Exit(2)
    first, last = _period(start, end)
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        answer = tiers_over_time.compute(
            session,
            programme=found,
            start=first,
            end=last,
            grain=grain,  # type: ignore[arg-type]
        )
    if as_json:
        console.print_json(answer.model_dump_json())
        return
    codes = [s.tier for s in answer.periods[0].members] if answer.periods else []
    table = Table("bucket", *codes, "joined", "upgrades", "downgrades",
                  title=f"Members per tier at the end of each {answer.grain}")  # fmt: skip
    for p in answer.periods:
        held = {s.tier: s.members for s in p.members}
        table.add_row(str(p.bucket), *[str(held.get(c, 0)) for c in codes], str(p.joined),
                      str(p.upgrades), str(p.downgrades))  # fmt: skip
    console.print(table)


def liability_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    wallet: str = typer.Option("points", "--wallet", "-w", help="The wallet's code"),
    at: str = typer.Option(None, "--at", help="ISO instant with offset (default: now)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Liability at a date, breakage forecast for 12 months, back-test when in the past."""
    when = None
    if at is not None:
        try:
            when = ensure_aware(datetime.fromisoformat(at))
        except ValueError as exc:
            err_console.print(f"[red]error:[/red] --at: {exc}")
            raise typer.Exit(2) from exc
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        answer = liability.forecast(session, programme=found, wallet=wallet, at=when)
    if as_json:
        console.print_json(answer.model_dump_json())
        return
    console.print(
        f"{answer.wallet} at {answer.at:%Y-%m-%d %H:%M} UTC: {answer.outstanding} outstanding "
        f"({_fmt(answer.liability_money)} in money), expected breakage {answer.expected_breakage}"
        f" ({_fmt(answer.breakage_rate)})"
    )
    table = Table("month", "until", "exp. redeemed", "exp. expired", "exp. outstanding",
                  "exp. liability", "redeemed", "expired", "outstanding",
                  title="Forecast (and what happened, when known)")  # fmt: skip
    for m in answer.forecast:
        table.add_row(str(m.month), f"{m.until:%Y-%m-%d}", str(m.expected_redeemed),
                      str(m.expected_expired), str(m.expected_outstanding),
                      _fmt(m.expected_liability_money), _fmt(m.actual_redeemed),
                      _fmt(m.actual_expired), _fmt(m.actual_outstanding))  # fmt: skip
    console.print(table)


def refresh_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
) -> None:
    """Bring the KPI aggregates up to date (what the API does before answering)."""
    with failing_cleanly(), database().transaction() as session:
        done = aggregates.refresh(session, programme=programme_by_slug(session, programme))
    what = "rebuilt" if done.full else f"{done.days} days recomputed"
    console.print(f"aggregates up to {done.refreshed_to:%Y-%m-%d %H:%M:%S} UTC: {what}")
