"""`fidelia scenarios`: list, stats, preview, back-test and tick a programme's scenarios."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import typer

from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug
from fidelia.errors import NotFound
from fidelia.kit.clock import ensure_aware, utcnow
from fidelia.members import service as members
from fidelia.scenarios import engine, jobs, preview, service, stats
from fidelia.scenarios.schemas import Scenario, ScenariosSection

scenarios_app = typer.Typer(help="Scenarios (journeys).", no_args_is_help=True)
ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


def _found(section: ScenariosSection | None, code: str) -> Scenario:
    scenario = section.get(code) if section else None
    if scenario is None:
        raise NotFound(f"scenario {code!r} is not in the live programme document")
    return scenario


@scenarios_app.command("list")
def list_command(programme: str = ProgrammeOpt) -> None:
    """Every scenario of the live document with its entry, holdout and figures."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        section = service.section_for(session, found)
        for s in section.definitions if section else []:
            figures = stats.scenario_stats(session, programme=found, code=s.code)
            console.print(
                f"{s.code}  {s.name!r}  entry: {s.entry.kind}  holdout: {s.holdout_percent:g} %  "
                f"entered: {figures['entered']}  in progress: {figures['in_progress']}  "
                f"converted: {figures['converted']}",
                soft_wrap=True,
            )


@scenarios_app.command("stats")
def stats_command(code: str, programme: str = ProgrammeOpt) -> None:
    """A scenario's stats (JSON): arms, lift with its 95 % interval, steps, messages."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        _found(service.section_for(session, found), code)
        figures = stats.scenario_stats(session, programme=found, code=code)
    console.print_json(json.dumps(figures, default=str))


@scenarios_app.command("preview")
def preview_command(
    code: str,
    programme: str = ProgrammeOpt,
    member: str | None = typer.Option(None, help="A member id: the path they would take"),
) -> None:
    """Who would enter now (segment, date, inactivity, schedule entries), or one member's
    path with the messages rendered. Writes nothing."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        section = service.section_for(session, found)
        scenario = _found(section, code)
        assert section is not None
        if member is None:
            out = preview.who_enters_now(session, found, section, scenario, utcnow())
        else:
            who = members.get(session, programme=found, member_id=uuid.UUID(member))
            out = {"path": preview.path_for(session, found, scenario, who, {}, utcnow())}
    console.print_json(json.dumps(out, default=str))


@scenarios_app.command("backtest")
def backtest_command(
    code: str,
    since: datetime = typer.Option(..., help="Start (ISO 8601; UTC if no offset)"),
    until: datetime = typer.Option(..., help="End, excluded"),
    programme: str = ProgrammeOpt,
) -> None:
    """Replay an event entry over stored events: entries per day, holdout, messages."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        section = service.section_for(session, found)
        scenario = _found(section, code)
        assert section is not None
        out = preview.backtest(session, found, section, scenario, _utc(since), _utc(until))
    console.print_json(json.dumps(out, default=str))


def _utc(value: datetime) -> datetime:
    return ensure_aware(value if value.tzinfo else value.replace(tzinfo=UTC))


@scenarios_app.command("tick")
def tick_command(programme: str = ProgrammeOpt) -> None:
    """Run the engine now for the programme (the worker does it every minute)."""
    with failing_cleanly(), database().transaction() as session:
        found = programme_by_slug(session, programme)
        result = engine.tick(session, programme=found, now=utcnow(), emit=jobs.emitter())
    console.print(
        f"entered {result.entered}, advanced {result.advanced}, messages {result.messages}, "
        f"ended {result.ended}" + (" (more due: run again)" if result.more else "")
    )
