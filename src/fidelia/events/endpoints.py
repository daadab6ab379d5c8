from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES, Conflict, FideliaError, FieldError, ValidationFailed
from fidelia.events import examples as ex
from fidelia.events import log, service, types
from fidelia.events.schemas import BatchOutcome, EventIn, EventOut, EventOutcome
from fidelia.events.types import EventTypeIn, EventTypeOut
from fidelia.examples import examples

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)


class EventBatch(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.BATCH))

    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Up to 1,000 events, each shaped as in `POST /events`. Each one is accepted "
        "or rejected on its own; a rejected event changes nothing.",
    )


_ERRORS: dict[str, type[FideliaError]] = {
    cls.code: cls
    for cls in (
        ValidationFailed,
        Conflict,
        service.UnknownMember,
        service.MemberClosed,
        service.IdempotencyConflict,
    )
}


@router.post(
    "/events",
    response_model=EventOutcome,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": EventOutcome, "description": "A resend: the first outcome"}},
    summary="Send one event",
)
def post_event(
    body: EventIn, principal: Integrator, session: DbSession, response: Response
) -> EventOutcome:
    (outcome,) = service.ingest(session, programme=principal.programme, events=[body])
    if outcome.status == "rejected":
        error = _ERRORS.get(outcome.error or "", ValidationFailed)
        raise error(
            outcome.detail or "rejected",
            fields=[FieldError(tuple(f["loc"]), f["msg"]) for f in outcome.fields],
        )
    if outcome.status == "duplicate":
        response.status_code = status.HTTP_200_OK
    return outcome.model_copy(update={"index": None})


class DryRunOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.DRY_RUN))

    member_id: uuid.UUID | None = Field(description="None: the event names nobody yet")
    version: int = Field(description="The programme version evaluated")
    totals: dict[str, Any]
    effects: list[dict[str, Any]]
    skipped: list[dict[str, Any]] = Field(
        description="Rules that matched but gave nothing, and why"
    )


@router.post(
    "/events/dry-run",
    response_model=DryRunOut,
    summary="What an event would earn now, with explanations; writes nothing",
)
def dry_run(body: EventIn, principal: Integrator, session: DbSession) -> DryRunOut:
    return DryRunOut.model_validate(
        service.dry_run(session, programme=principal.programme, event=body)
    )


@router.post("/events/batch", response_model=BatchOutcome, summary="Send up to 1,000 events")
def post_batch(body: EventBatch, principal: Integrator, session: DbSession) -> BatchOutcome:
    outcomes = service.ingest_payloads(session, programme=principal.programme, payloads=body.events)
    return BatchOutcome(
        accepted=sum(o.status == "accepted" for o in outcomes),
        duplicates=sum(o.status == "duplicate" for o in outcomes),
        rejected=sum(o.status == "rejected" for o in outcomes),
        results=outcomes,
    )


@router.get(
    "/events/{event_id}", response_model=EventOut, summary="An event by the id it was sent with"
)
def read_event(event_id: str, principal: Reader, session: DbSession) -> EventOut:
    event = log.get_by_key(session, programme=principal.programme, key=event_id)
    return EventOut.model_validate(event, from_attributes=True)


@router.get("/event-types", response_model=list[EventTypeOut], response_model_by_alias=True)
def list_event_types(principal: Reader, session: DbSession) -> list[EventTypeOut]:
    rows = types.list_types(session, programme=principal.programme)
    return [EventTypeOut.model_validate(r) for r in rows]


@router.put(
    "/event-types/{name}", response_model=EventTypeOut, summary="Declare a custom event type"
)
def declare_event_type(
    name: str, body: EventTypeIn, principal: Admin, session: DbSession
) -> EventTypeOut:
    row = types.declare(session, programme=principal.programme, name=name, data=body)
    return EventTypeOut.model_validate(row)
