from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fidelia.auth.dependencies import (
    Admin,
    DbSession,
    GroupedIntegrator,
    Integrator,
    Reader,
    presented_credentials,
    require_without_session,
)
from fidelia.auth.schemas import Scope
from fidelia.auth.service import Principal
from fidelia.engagement.checkins import CheckInRefused
from fidelia.errors import ERROR_RESPONSES, Conflict, FideliaError, FieldError, ValidationFailed
from fidelia.events import examples as ex
from fidelia.events import log, types
from fidelia.events.schemas import BatchOutcome, EventIn, EventOut, EventOutcome
from fidelia.events.types import EventTypeIn, EventTypeOut
from fidelia.examples import examples
from fidelia.intake import service
from fidelia.intake.group import GroupCommit

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
        CheckInRefused,
    )
}


_integrator = require_without_session(Scope.integration)  # GroupedIntegrator's check


class _EventRoute(APIRoute):
    """``POST /events`` with its common case on a short path (issue 18).

    A body sent as ``application/json`` that is a valid event goes straight to the same
    authentication and the same hand-off as :func:`post_event`, without FastAPI's general
    machinery (solving the dependencies, the body field, the response model's round trip):
    per request that machinery cost more than the endpoint's own work. Anything else (another
    content type, a body that does not parse or validate) takes FastAPI's path, so every error
    answer is FastAPI's own, word for word. The declaration (body, key, responses) is
    :func:`post_event`'s, which the OpenAPI document describes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        general = super().get_route_handler()

        async def handler(request: Request) -> Response:
            event = await _valid_event(request)
            if event is None:
                return await general(request)
            principal = await _integrator(request, *await presented_credentials(request))
            return await _submit(request, principal, event)

        return handler


async def _valid_event(request: Request) -> EventIn | None:
    """The body as an event when it is plain JSON that validates (parsed as FastAPI parses
    it, ``json.loads`` of the bytes, then the model); None: let FastAPI answer."""
    if request.headers.get("content-type") != "application/json":
        return None
    try:
        data = await request.json()  # Starlette keeps it: FastAPI's path reads the same
        return EventIn.model_validate(data)
    except (ValueError, ValidationError):  # JSONDecodeError, UnicodeDecodeError: ValueError
        return None


async def _submit(request: Request, principal: Principal, event: EventIn) -> Response:
    # Concurrent requests share one transaction (intake/group.py); answered after its commit.
    committer: GroupCommit = request.app.state.group_commit
    outcome = await committer.submit(key_id=principal.key_id, event=event)
    if outcome.status == "rejected":
        error = _ERRORS.get(outcome.error or "", ValidationFailed)
        raise error(
            outcome.detail or "rejected",
            fields=[FieldError(tuple(f["loc"]), f["msg"]) for f in outcome.fields],
        )
    code = status.HTTP_200_OK if outcome.status == "duplicate" else status.HTTP_201_CREATED
    # the bytes FastAPI's response model gives (the group answers ``index`` None)
    return Response(outcome.model_dump_json(), status_code=code, media_type="application/json")


async def post_event(body: EventIn, principal: GroupedIntegrator, request: Request) -> Response:
    """Send one event that happened to a member: a built-in type (`purchase`, `return`, `enrolment`,
    `profile_updated`, `consent_changed`) whose properties are checked, or a custom type (free
    properties, or checked against the JSON schema the programme declared for it). The member is
    named by id or by any identity. The event is stored and the programme runs on it in the same
    transaction: the answer says what it earned per wallet (`totals`) and why (`effects`: each award
    with its rule, base, rate and lines; vouchers, badges; for a return, the points taken back). A
    purchase's `total` must be its lines after discounts, plus shipping.

    Retries: the event's `id` is its idempotency key. Sent again with the same content, it answers
    the first outcome (status `duplicate`, 200) and changes nothing.

    409: `idempotency_conflict` (the `id` was used for other content), `member_closed`, or a
    `conflict` (the order was already sent as a purchase under another id; identities of different
    members). 422: `validation_error` naming the field (e.g. a date-time without offset, a return of
    more than was bought, of an order nobody sent), or `unknown_member` when nobody holds the
    identity and the programme does not enrol unknown members (`settings.unknown_member`; with
    `enrol_prospect` a prospect is enrolled and `member_created` is true). A refused event changes
    nothing.

    Scope: `integration`.
    """
    return await _submit(request, principal, body)


router.add_api_route(
    "/events",
    post_event,
    methods=["POST"],
    response_model=EventOutcome,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": EventOutcome, "description": "A resend: the first outcome"}},
    summary="Send one event",
    route_class_override=_EventRoute,
)


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
    """What the event would earn now, with every explanation, and the rules that matched but gave
    nothing (`skipped`, with the reason: a limit, a budget, a cap). Nothing is written: no event, no
    points, no counter. A member nobody holds yet is evaluated as a new member with an empty
    history. Safe to call any number of times.

    422: the event is invalid, as it would be for `POST /events`.

    Scope: `integration`.
    """
    return DryRunOut.model_validate(
        service.dry_run(session, programme=principal.programme, event=body)
    )


@router.post("/events/batch", response_model=BatchOutcome, summary="Send up to 1,000 events")
def post_batch(body: EventBatch, principal: Integrator, session: DbSession) -> BatchOutcome:
    """Send up to 1,000 events, each shaped as for `POST /events`. Each one is accepted, found a
    duplicate or rejected on its own, and a rejected one changes nothing: the answer is always 200
    with one outcome per event, in order (`index`), and the counts. Events are processed in the
    order given, so a return may follow its purchase in the same batch. Retrying a whole batch is
    safe: the events already accepted come back as `duplicate`.

    413: the body is over the bulk size limit. 422: `events` is empty, holds more than 1,000 items,
    or an item is not an object (each event's own errors are in its outcome).

    Scope: `integration`.
    """
    outcomes = service.ingest_payloads(
        session,
        programme=principal.programme,
        payloads=body.events,
        actor=f"api_key:{principal.key_id}",
    )
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
    """The event stored under `event_id`, the id (idempotency key) it was sent with, as stored after
    validation (properties normalised), with the time it was received.

    404: no event with this id.

    Scope: `read`.
    """
    event = log.get_by_key(session, programme=principal.programme, key=event_id)
    return EventOut.model_validate(event, from_attributes=True)


@router.get(
    "/event-types",
    response_model=list[EventTypeOut],
    response_model_by_alias=True,
    summary="The custom event types the programme declared",
)
def list_event_types(principal: Reader, session: DbSession) -> list[EventTypeOut]:
    """The custom event types the programme declared, with the JSON schema their properties are
    checked against. Built-in types are not listed.

    Scope: `read`.
    """
    rows = types.list_types(session, programme=principal.programme)
    return [EventTypeOut.model_validate(r) for r in rows]


@router.put(
    "/event-types/{name}", response_model=EventTypeOut, summary="Declare a custom event type"
)
def declare_event_type(
    name: str, body: EventTypeIn, principal: Admin, session: DbSession
) -> EventTypeOut:
    """Declare a custom event type (e.g. `review`, `check_in`) or replace its declaration: from now
    on, its events' properties are checked against `schema` (JSON Schema 2020-12). Putting the same
    declaration again changes nothing. Events of undeclared custom types are accepted with free
    properties.

    422: the name is a built-in type or not lower case letters, digits, `_` and `.`; the schema is
    not a valid JSON Schema (`fields` gives its path inside `schema`).

    Scope: `admin`.
    """
    row = types.declare(session, programme=principal.programme, name=name, data=body)
    return EventTypeOut.model_validate(row)
