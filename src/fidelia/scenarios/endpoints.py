"""Scenarios API: the scenarios of the live document with their figures, stats with lift,
preview (who would enter now; one member's path), back-test over past events, journeys (of a
scenario, of a member), and a tick run now."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from sqlalchemy import func, select

from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES, NotFound, ValidationFailed
from fidelia.examples import examples
from fidelia.kit.bounds import FreeJson, Instant
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.models import Programme
from fidelia.models.scenarios import ScenarioJourney
from fidelia.scenarios import examples as ex
from fidelia.scenarios import jobs, preview, service, stats
from fidelia.scenarios.schemas import Scenario, ScenariosSection

router = APIRouter(tags=["scenarios"], responses=ERROR_RESPONSES)
CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
JourneyStatus = Literal["active", "completed", "converted", "exited"]


def _free(example: dict[str, Any], description: str) -> Any:
    """A JSON object answer, documented by its example."""
    schema = {"type": "object", "additionalProperties": True, "description": description,
              "examples": [example]}  # fmt: skip
    return Annotated[dict[str, Any], WithJsonSchema(schema)]


ScenarioDefinition = _free(ex.SCENARIO, "A scenario as the programme document holds it")
ScenarioStats = _free(ex.STATS, "Arms, lift, revenue, steps and messages of a scenario")
PreviewOut = _free(ex.PREVIEW, "Who would enter now, or one member's path")
BacktestOut = _free(ex.BACKTEST, "An event entry replayed over stored events")
TickOut = _free(ex.TICK, "What a tick did")


class ScenarioSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SUMMARY))

    code: str
    name: str
    active: bool
    entry: str
    holdout_percent: float
    entered: int
    in_progress: int
    converted: int
    version: int


class JourneyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.JOURNEY))

    id: uuid.UUID
    scenario: str
    member_id: uuid.UUID
    holdout: bool
    status: str
    step: str | None
    due_at: datetime | None
    entered_at: datetime
    converted_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    version: int
    event: dict[str, Any]


class ScenarioPreviewIn(BaseModel):
    """With ``member_id``: that member's path (conditions as of now, ``event`` as the entry
    event, message outcome branches taken as ``assume_outcome``). Without: who would enter
    now (segment, date, inactivity and schedule entries)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.PREVIEW_IN))

    member_id: uuid.UUID | None = None
    event: FreeJson = Field(default_factory=dict)
    assume_outcome: bool = False


class BacktestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.BACKTEST_IN))

    since: Instant
    until: Instant


def _section(session: DbSession, programme: Programme) -> ScenariosSection:
    section = service.section_for(session, programme)
    if section is None:
        return ScenariosSection()
    return section


def _scenario(
    session: DbSession, programme: Programme, code: str
) -> tuple[ScenariosSection, Scenario]:
    section = _section(session, programme)
    found = section.get(code)
    if found is None:
        raise NotFound(f"scenario {code!r} is not in the live programme document")
    return section, found


@router.get("/scenarios", response_model=list[ScenarioSummary], summary="The scenarios")
def list_scenarios(principal: Reader, session: DbSession) -> list[ScenarioSummary]:
    """Every scenario of the live document, with how many members entered, are in progress and
    converted. Scenarios are edited in the programme document (`PUT /programme/document`).

    Scope: `read`.
    """
    programme = principal.programme
    j = ScenarioJourney
    figures: dict[str, list[int]] = {}
    for code, status, count, converted in session.execute(
        select(j.scenario, j.status, func.count(), func.count(j.converted_at))
        .where(j.programme_id == programme.id)
        .group_by(j.scenario, j.status)
    ):
        row = figures.setdefault(code, [0, 0, 0])
        row[0] += count
        row[1] += count if status == "active" else 0
        row[2] += converted
    return [
        ScenarioSummary(
            code=s.code,
            name=s.name,
            active=s.active,
            entry=s.entry.kind,
            holdout_percent=s.holdout_percent,
            entered=figures.get(s.code, [0])[0],
            in_progress=figures.get(s.code, [0, 0])[1],
            converted=figures.get(s.code, [0, 0, 0])[2],
            version=programme.live_version,
        )
        for s in _section(session, programme).definitions
    ]


@router.get(
    "/scenarios/{code}", response_model=ScenarioDefinition, summary="A scenario's definition"
)
def get_scenario(code: CodePath, principal: Reader, session: DbSession) -> dict[str, Any]:
    """The scenario as the live document holds it.

    404: no such scenario. Scope: `read`.
    """
    _, scenario = _scenario(session, principal.programme, code)
    return scenario.model_dump(mode="json", by_alias=True)


@router.get(
    "/scenarios/{code}/stats",
    response_model=ScenarioStats,
    summary="A scenario's stats, with holdout and lift",
)
def scenario_stats(code: CodePath, principal: Reader, session: DbSession) -> dict[str, Any]:
    """Journeys entered, in progress, converted; per arm (`treated`, `holdout`) with the
    conversion rate; `lift`: the treated minus holdout conversion with its 95 % interval
    (null until both arms have members); per step the outcomes (`sent`/`queued`, `holdout`,
    `then`/`else`, `waiting`, `timeout`...) and `due_here`; messages by channel and status.

    404: no such scenario. Scope: `read`.
    """
    programme = principal.programme
    _scenario(session, programme, code)
    return stats.scenario_stats(session, programme=programme, code=code)


@router.post(
    "/scenarios/{code}/preview",
    response_model=PreviewOut,
    summary="Who would enter now, or one member's path",
)
def preview_scenario(
    code: CodePath, body: ScenarioPreviewIn, principal: Reader, session: DbSession
) -> dict[str, Any]:
    """Without `member_id`: the members who would enter now (segment, date trait, inactivity
    or schedule entry) after the re-entry policy and the audience, with the holdout split.
    With `member_id`: the steps they would go through and the messages they would get,
    rendered. Writes nothing.

    404: no such scenario or member. 422: an event entry without a member (back-test it).
    Scope: `read`.
    """
    programme = principal.programme
    section, scenario = _scenario(session, programme, code)
    now = utcnow()
    if body.member_id is None:
        return preview.who_enters_now(session, programme, section, scenario, now)
    member = members.get(session, programme=programme, member_id=body.member_id)
    path = preview.path_for(
        session,
        programme,
        scenario,
        member,
        dict(body.event),
        now,
        assume_outcome=body.assume_outcome,
    )
    holdout = service.is_holdout(section, scenario, programme.id, member.id)
    return {"member_id": str(member.id), "holdout": holdout, "path": path}


@router.post(
    "/scenarios/{code}/backtest",
    response_model=BacktestOut,
    summary="Replay an event entry over past events",
)
def backtest_scenario(
    code: CodePath, body: BacktestIn, principal: Reader, session: DbSession
) -> dict[str, Any]:
    """How many members would have entered between `since` and `until` (at most 366 days),
    per day, the holdout split and the messages sent on entry. Writes nothing.

    422: not an event entry, or a bad window. Scope: `read`.
    """
    programme = principal.programme
    section, scenario = _scenario(session, programme, code)
    return preview.backtest(session, programme, section, scenario, body.since, body.until)


@router.get(
    "/scenarios/{code}/journeys", response_model=list[JourneyOut], summary="A scenario's journeys"
)
def scenario_journeys(
    code: CodePath,
    principal: Reader,
    session: DbSession,
    status: JourneyStatus | None = None,
    holdout: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ScenarioJourney]:
    """The scenario's journeys, newest first. Scope: `read`."""
    programme = principal.programme
    query = select(ScenarioJourney).where(
        ScenarioJourney.programme_id == programme.id, ScenarioJourney.scenario == code
    )
    if status is not None:
        query = query.where(ScenarioJourney.status == status)
    if holdout is not None:
        query = query.where(ScenarioJourney.holdout.is_(holdout))
    order = (ScenarioJourney.entered_at.desc(), ScenarioJourney.id.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))


@router.get(
    "/members/{member_id}/journeys",
    response_model=list[JourneyOut],
    summary="A member's scenario journeys",
)
def member_journeys(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[ScenarioJourney]:
    """Every journey of the member, newest first. 404: no such member. Scope: `read`."""
    programme = principal.programme
    members.get(session, programme=programme, member_id=member_id)
    return list(
        session.scalars(
            select(ScenarioJourney)
            .where(
                ScenarioJourney.programme_id == programme.id,
                ScenarioJourney.member_id == member_id,
            )
            .order_by(ScenarioJourney.entered_at.desc(), ScenarioJourney.id.desc())
            .limit(500)
        )
    )


@router.post("/scenarios/tick", response_model=TickOut, summary="Run the scenario engine now")
def run_tick(principal: Admin, session: DbSession) -> dict[str, Any]:
    """Enter, end and advance the programme's journeys now (the worker does it every minute).
    Messages go out through the worker after commit. Scope: `admin`.
    """
    programme = principal.programme
    if service.section_for(session, programme) is None:
        raise ValidationFailed.on("scenarios", "the programme document has no scenarios")
    return jobs.run_tick(session, programme=programme, now=utcnow())
