"""Enrolment: the one way a person becomes a member, whatever the door (API, CLI, import, portal).

Every door turns the member's details into an ``enrolment`` event and sends it through the event
intake asking for new members only: the intake creates the member, records the event and runs
the programme on it (rules, badges, tier) in the same transaction, and the outcome says what the
enrolment earned. A taken identity is a 409 naming the request's field, as before.

Resends: the event's id is the caller's ``Idempotency-Key`` when there is one, so a resend of the
same request answers the first outcome (status ``duplicate``) and the member, and the same key
with another request is a 409. Without a key, the identities are what makes a resend harmless: it
is refused as a taken identity and enrols no one twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, FideliaError, FieldError, ValidationFailed
from fidelia.events.schemas import EventIn, EventOutcome, MemberRef, Profile
from fidelia.intake import service as intake
from fidelia.intake.joining import AlreadyEnrolled
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.members import service
from fidelia.members.schemas import MemberCreate
from fidelia.models import Event, Member, Programme

IDEMPOTENCY_HEADER = "Idempotency-Key"
_PROFILE_FIELDS = set(Profile.model_fields)
_ERRORS: dict[str, type[FideliaError]] = {
    cls.code: cls
    for cls in (
        ValidationFailed,
        Conflict,
        intake.UnknownMember,
        intake.MemberClosed,
        intake.IdempotencyConflict,
        AlreadyEnrolled,
    )
}


@dataclass(frozen=True)
class Enrolled:
    """The member and the outcome of their enrolment event (``duplicate`` for a resend)."""

    member: Member
    outcome: EventOutcome


def enrolment_event(
    programme: Programme, data: MemberCreate, *, key: str, at: datetime, consent_source: str
) -> tuple[EventIn, list[service.IdentityKey]]:
    """The ``enrolment`` event of an enrolment request, and its normalised identities (named by
    the request's fields). 422 if the request gives no identity, or one twice."""
    keys = service.keys_of_create(programme, data)
    if not keys:
        raise ValidationFailed(
            "a member needs a card, email, phone or external id",
            fields=[FieldError((), "give a card, email, phone or external id")],
        )
    externals = data.external_ids
    ref = MemberRef(
        card=data.card or None,
        email=data.email or None,
        phone=data.phone or None,
        external=externals[0] if externals else None,
    )
    properties: dict[str, Any] = {
        "profile": data.model_dump(include=_PROFILE_FIELDS, exclude_unset=True, mode="json"),
        "consents": [
            {"channel": c.channel, "granted": c.granted, "source": c.source or consent_source}
            for c in data.consents
        ],
    }
    if len(externals) > 1:
        properties["external_ids"] = [x.model_dump() for x in externals[1:]]
    if data.referral_code is not None:
        properties["referral_code"] = data.referral_code
    event = EventIn(
        id=key,
        type="enrolment",
        occurred_at=at,
        member=ref,
        channel=data.channel,
        store=data.store,
        properties=properties,
    )
    return event, keys


def enrol(
    session: Session,
    *,
    programme: Programme,
    data: MemberCreate,
    actor: str,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Enrolled:
    """Enrol a new member through the intake: the member, their enrolment event, and what the
    programme gave them. 409 naming the field of a taken identity; a resend with the same
    ``idempotency_key`` answers the first enrolment."""
    now = now or utcnow()
    key = idempotency_key or f"members:{uuid7()}"
    for attempt in (1, 2):
        first_at = _stored_at(session, programme, idempotency_key) if idempotency_key else None
        event, keys = enrolment_event(
            programme,
            data,
            key=key,
            at=data.enrolled_at or first_at or now,  # a resend without a date is the same event
            consent_source=f"enrolment:{data.channel}",
        )
        if first_at is None:
            service.check_free(session, programme, keys)
        (outcome,) = intake.ingest(
            session, programme=programme, events=[event], now=now, on_enrolled="refuse", actor=actor
        )
        # A concurrent resend stored the key between our look and our insert: look again, so
        # that the same request is answered as a resend (its time is the first one's).
        reused = outcome.error == intake.IdempotencyConflict.code
        if not (reused and first_at is None and attempt == 1):
            break
    if outcome.status == "rejected":
        _refuse(session, programme, keys, outcome, idempotency_key)
    assert outcome.member_id is not None
    member = service.get(session, programme=programme, member_id=outcome.member_id)
    return Enrolled(member, outcome)


def enrol_many(
    session: Session,
    *,
    programme: Programme,
    requests: Sequence[MemberCreate | FideliaError],
    actor: str,
    consent_source: str,
    now: datetime | None = None,
) -> list[EventOutcome]:
    """Enrol new members in bulk, through one batch of the intake: an outcome per request, in
    order. A request whose identities already belong to a member is rejected as
    ``already_enrolled`` and changes nothing; a request that is already an error passes through
    as a rejected outcome."""
    now = now or utcnow()
    events: list[EventIn | EventOutcome] = []
    for i, request in enumerate(requests):
        try:
            if isinstance(request, FideliaError):
                raise request
            event, _ = enrolment_event(
                programme,
                request,
                key=f"members:{uuid7()}",
                at=request.enrolled_at or now,
                consent_source=consent_source,
            )
            events.append(event)
        except FideliaError as err:
            events.append(intake.rejected(i, "", err))
    return intake.ingest(
        session, programme=programme, events=events, now=now, on_enrolled="refuse", actor=actor
    )


def _stored_at(session: Session, programme: Programme, key: str) -> datetime | None:
    """When the event stored under ``key`` happened (None: there is none)."""
    return session.scalar(
        select(Event.occurred_at).where(
            Event.programme_id == programme.id, Event.idempotency_key == key
        )
    )


def _refuse(
    session: Session,
    programme: Programme,
    keys: list[service.IdentityKey],
    outcome: EventOutcome,
    idempotency_key: str | None,
) -> None:
    """Raise the error of a rejected enrolment, naming the request's fields."""
    if outcome.error == AlreadyEnrolled.code:  # taken meanwhile by another writer
        service.check_free(session, programme, keys)
    if outcome.error == intake.IdempotencyConflict.code:
        raise intake.IdempotencyConflict(
            f"{IDEMPOTENCY_HEADER} {idempotency_key!r} was already used for another request",
            fields=[FieldError(("header", IDEMPOTENCY_HEADER), "already used for other content")],
        )
    error = _ERRORS.get(outcome.error or "", ValidationFailed)
    fields = [FieldError(_request_loc(tuple(f["loc"])), f["msg"]) for f in outcome.fields]
    raise error(outcome.detail or "enrolment refused", fields=fields)


def _request_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Where a field of the enrolment event came from in the enrolment request."""
    match loc:
        case ("member", "external", *rest):
            return ("external_ids", 0, *rest)
        case ("member", *rest):
            return tuple(rest)
        case ("properties", "external_ids", int(i), *rest):
            return ("external_ids", i + 1, *rest)
        case ("properties", "profile", *rest) | ("properties", *rest):
            return tuple(rest)
    return loc
