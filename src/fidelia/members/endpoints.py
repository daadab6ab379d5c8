from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.events import log as events
from fidelia.events.schemas import EventOut, ExternalId, MemberRef
from fidelia.kit.bounds import Instant
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import Page
from fidelia.members import service
from fidelia.members.schemas import (
    ConsentIn,
    ConsentOut,
    IdentityAdd,
    LookupQuery,
    MemberCreate,
    MemberOut,
    MemberStatus,
    MemberUpdate,
    StatusChange,
)
from fidelia.models import Member, Programme

router = APIRouter(prefix="/members", tags=["members"], responses=ERROR_RESPONSES)


def _out(session: Session, member: Member) -> MemberOut:
    return MemberOut.model_validate(service.details(session, member=member))


@router.post("", response_model=MemberOut, status_code=status.HTTP_201_CREATED)
def enrol(body: MemberCreate, principal: Integrator, session: DbSession) -> MemberOut:
    member = service.enrol(session, programme=principal.programme, data=body)
    return _out(session, member)


@router.get("", response_model=Page[MemberOut])
def list_members(
    principal: Reader,
    session: DbSession,
    status: MemberStatus | None = None,
    channel: str | None = None,
    store: str | None = None,
    enrolled_after: Instant | None = None,
    enrolled_before: Instant | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[MemberOut]:
    found, next_cursor = service.list_members(
        session,
        programme=principal.programme,
        status=status,
        channel=channel,
        store=store,
        enrolled_after=enrolled_after,
        enrolled_before=enrolled_before,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=[_out(session, m) for m in found], next_cursor=next_cursor)


@router.get("/lookup", response_model=MemberOut, summary="Find a member by any identity")
def lookup(
    principal: Reader, session: DbSession, query: Annotated[LookupQuery, Query()]
) -> MemberOut:
    external = (
        ExternalId(namespace=query.namespace, value=query.external_id)
        if query.namespace and query.external_id
        else None
    )
    ref = MemberRef(card=query.card, email=query.email, phone=query.phone, external=external)
    member = service.lookup(session, programme=principal.programme, ref=ref, loc=("query",))
    return _out(session, member)


def _member(
    session: Session, programme: Programme, member_id: uuid.UUID, *, lock: bool = False
) -> Member:
    if lock:
        return service.get_for_update(session, programme=programme, member_id=member_id)
    return service.get(session, programme=programme, member_id=member_id)


@router.get("/{member_id}", response_model=MemberOut)
def read_member(member_id: uuid.UUID, principal: Reader, session: DbSession) -> MemberOut:
    return _out(session, _member(session, principal.programme, member_id))


@router.patch("/{member_id}", response_model=MemberOut, summary="Update profile fields")
def update_member(
    member_id: uuid.UUID, body: MemberUpdate, principal: Integrator, session: DbSession
) -> MemberOut:
    member = _member(session, principal.programme, member_id, lock=True)
    return _out(session, service.update_profile(session, member=member, profile=body))


@router.post(
    "/{member_id}/identities", response_model=MemberOut, status_code=status.HTTP_201_CREATED
)
def add_identity(
    member_id: uuid.UUID, body: IdentityAdd, principal: Integrator, session: DbSession
) -> MemberOut:
    programme = principal.programme
    member = _member(session, programme, member_id, lock=True)
    service.add_identity(
        session, programme=programme, member=member, key=service.key_of(programme, body)
    )
    return _out(session, member)


@router.post(
    "/{member_id}/consents", response_model=ConsentOut, summary="Grant or revoke a consent"
)
def set_consent(
    member_id: uuid.UUID, body: ConsentIn, principal: Integrator, session: DbSession
) -> ConsentOut:
    programme = principal.programme
    member = _member(session, programme, member_id, lock=True)
    consent = service.set_consent(
        session,
        programme=programme,
        member=member,
        channel=body.channel,
        granted=body.granted,
        at=utcnow(),
        source=body.source or "api",
    )
    return ConsentOut.model_validate(consent)


@router.get("/{member_id}/consents/history", response_model=list[ConsentOut])
def consent_history(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[ConsentOut]:
    member = _member(session, principal.programme, member_id)
    return [ConsentOut.model_validate(c) for c in service.consent_history(session, member=member)]


@router.post(
    "/{member_id}/status", response_model=MemberOut, summary="Suspend, reactivate or close"
)
def change_status(
    member_id: uuid.UUID, body: StatusChange, principal: Admin, session: DbSession
) -> MemberOut:
    member = _member(session, principal.programme, member_id, lock=True)
    return _out(session, service.set_status(session, member=member, status=body.status))


@router.get(
    "/{member_id}/events", response_model=Page[EventOut], summary="The member's events in order"
)
def member_events(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[EventOut]:
    member = _member(session, principal.programme, member_id)
    rows, next_cursor = events.list_for_member(session, member=member, cursor=cursor, limit=limit)
    return Page(
        items=[EventOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )
