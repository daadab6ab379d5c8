from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES, ValidationFailed
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
    MemberOut,
    MemberStatus,
    MemberUpdate,
    StatusChange,
    StatusChangeOut,
)
from fidelia.models import Member, Programme

router = APIRouter(prefix="/members", tags=["members"], responses=ERROR_RESPONSES)


def _out(session: Session, member: Member) -> MemberOut:
    return MemberOut.model_validate(service.details(session, member=member))


@router.get("", response_model=Page[MemberOut], summary="List members, filtered")
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
    """The programme's members in enrolment order, filtered by status, enrolment channel, store or
    enrolment date (`enrolled_after` inclusive, `enrolled_before` exclusive). Paged: pass the
    `next_cursor` of a page as `cursor` to get the next one.

    422: a malformed filter or a cursor this API did not give.

    Scope: `read`.
    """
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
    """The member who holds one identity: a card, an email, a phone, or an external id given as
    `namespace` and `external_id` together. The identity is normalised as at enrolment (an email in
    lower case, a phone in E.164 with the programme's country as default region) before it is
    matched.

    404: nobody holds this identity. 409: the identities given belong to different members. 422: no
    identity given, `namespace` without `external_id` (or the reverse), or an email or phone that is
    not one.

    Scope: `read`.
    """
    if (query.namespace is None) != (query.external_id is None):
        missing = "external_id" if query.external_id is None else "namespace"
        raise ValidationFailed.on(("query", missing), "give namespace and external_id together")
    if not any((query.card, query.email, query.phone, query.external_id)):
        raise ValidationFailed.on(("query",), "give card, email, phone or namespace+external_id")
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


@router.get("/{member_id}", response_model=MemberOut, summary="Read a member")
def read_member(member_id: uuid.UUID, principal: Reader, session: DbSession) -> MemberOut:
    """One member with their profile, identities and current consents.

    404: no such member in the programme.

    Scope: `read`.
    """
    return _out(session, _member(session, principal.programme, member_id))


@router.patch("/{member_id}", response_model=MemberOut, summary="Update profile fields")
def update_member(
    member_id: uuid.UUID, body: MemberUpdate, principal: Integrator, session: DbSession
) -> MemberOut:
    """Change profile fields: those present are set, those absent are left as they are; `attributes`
    are merged key by key (a null value removes the key). Identities, consents and status have their
    own calls. Sending the same body again changes nothing more.

    404: no such member. 422: an invalid field.

    Scope: `integration`.
    """
    member = _member(session, principal.programme, member_id, lock=True)
    return _out(session, service.update_profile(session, member=member, profile=body))


@router.post(
    "/{member_id}/identities",
    response_model=MemberOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add an identity (card, email, phone, external id)",
)
def add_identity(
    member_id: uuid.UUID, body: IdentityAdd, principal: Integrator, session: DbSession
) -> MemberOut:
    """Link one more identity to the member: a card, an email, a phone, or an external id with its
    `namespace` (the system it comes from, e.g. `shopify`).

    404: no such member. 409: the identity belongs to a member already (this one included: a retry
    is refused, and changes nothing). 422: an invalid value, or a namespace missing for an external
    id (or given for another kind).

    Scope: `integration`.
    """
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
    """Grant or revoke the member's consent to be contacted on one channel (email, sms, push,
    postal). The change is added to the consent history with its `source` (`api` by default);
    sending it again records it again and leaves the same state.

    404: no such member. 422: an unknown channel.

    Scope: `integration`.
    """
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


@router.get(
    "/{member_id}/consents/history",
    response_model=list[ConsentOut],
    summary="The member's consent changes, oldest first",
)
def consent_history(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[ConsentOut]:
    """Every consent change of the member, oldest first, with when and where it came from.

    404: no such member.

    Scope: `read`.
    """
    member = _member(session, principal.programme, member_id)
    return [ConsentOut.model_validate(c) for c in service.consent_history(session, member=member)]


@router.post(
    "/{member_id}/status", response_model=MemberOut, summary="Suspend, reactivate or close"
)
def change_status(
    member_id: uuid.UUID, body: StatusChange, principal: Admin, session: DbSession
) -> MemberOut:
    """Suspend, reactivate or close the member (prospect → active, suspended or closed; active ↔
    suspended; either → closed). A closed member stays closed: intake refuses their events. The
    change is kept in the status history with its reason and the key that made it; asking for the
    current status changes nothing, so a retry is harmless.

    404: no such member. 409: the change is not allowed from the current status (e.g. reopening a
    closed member).

    Scope: `admin`.
    """
    member = _member(session, principal.programme, member_id, lock=True)
    service.set_status(
        session,
        member=member,
        status=body.status,
        reason=body.reason,
        actor=f"api_key:{principal.key_id}",
    )
    return _out(session, member)


@router.get(
    "/{member_id}/status/history",
    response_model=list[StatusChangeOut],
    summary="The member's status changes, oldest first, with reasons and who made them",
)
def status_history(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[StatusChangeOut]:
    """Every status change of the member, oldest first: from and to, the reason, who made it (an API
    key, the intake, an import) and the event that made it, if one did.

    404: no such member.

    Scope: `read`.
    """
    member = _member(session, principal.programme, member_id)
    changes = service.status_history(session, member=member)
    return [StatusChangeOut.model_validate(c) for c in changes]


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
    """The member's events in the order they happened (`occurred_at`), as stored after validation.
    Paged: pass the `next_cursor` of a page as `cursor` to get the next one.

    404: no such member. 422: a cursor this API did not give.

    Scope: `read`.
    """
    member = _member(session, principal.programme, member_id)
    rows, next_cursor = events.list_for_member(session, member=member, cursor=cursor, limit=limit)
    return Page(
        items=[EventOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )
