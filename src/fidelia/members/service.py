"""Members: enrolment, identities, lookup, profile, consents and status.

Identities are normalised before they are stored or searched (emails lower-cased, phones in
E.164 read in the programme's country, card numbers without spaces), so a member is found
whatever way their details were typed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, FieldError, NotFound, ValidationFailed
from fidelia.events.schemas import MemberRef, Profile
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.kit.prepared import Prepared
from fidelia.members.identities import (
    CARD,
    EMAIL,
    EXTERNAL,
    PHONE,
    normalise_card,
    normalise_email,
    normalise_phone,
)
from fidelia.members.schemas import IdentityAdd, MemberCreate
from fidelia.models import (
    Consent,
    ConsentChange,
    Member,
    MemberIdentity,
    MemberStatusChange,
    Programme,
)
from fidelia.notices import Notice, record_many

STATUS_TRANSITIONS = {
    "prospect": {"active", "suspended", "closed"},
    "active": {"suspended", "closed"},
    "suspended": {"active", "closed"},
    "closed": set(),
    "merged": set(),  # final: only an unmerge (fidelia.merges) brings the member back
}


@dataclass(frozen=True)
class IdentityKey:
    """A normalised identity; ``field`` is where it came from in the request, for errors."""

    kind: str
    namespace: str
    value: str
    field: tuple[str | int, ...]

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.value)


def identity_keys(
    programme: Programme,
    *,
    card: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    external: Iterable[tuple[str, str]] = (),
    loc: tuple[str | int, ...] = (),
    external_field: str = "external_ids",
) -> list[IdentityKey]:
    keys: list[IdentityKey] = []
    if card:
        keys.append(IdentityKey(CARD, "", normalise_card(card, loc=(*loc, "card")), (*loc, "card")))
    if email:
        value = normalise_email(email, loc=(*loc, "email"))
        keys.append(IdentityKey(EMAIL, "", value, (*loc, "email")))
    if phone:
        value = normalise_phone(phone, region=programme.country, loc=(*loc, "phone"))
        keys.append(IdentityKey(PHONE, "", value, (*loc, "phone")))
    for i, (namespace, value) in enumerate(external):
        keys.append(IdentityKey(EXTERNAL, namespace, value, (*loc, external_field, i)))
    return keys


def keys_of_ref(
    programme: Programme, ref: MemberRef, *, loc: tuple[str | int, ...]
) -> list[IdentityKey]:
    external = [(ref.external.namespace, ref.external.value)] if ref.external else []
    return identity_keys(
        programme,
        card=ref.card,
        email=ref.email,
        phone=ref.phone,
        external=external,
        loc=loc,
        external_field="external",
    )


_IDENTITY_LOOKUP = Prepared(
    select(MemberIdentity.value, MemberIdentity.member_id).where(
        MemberIdentity.programme_id == bindparam("programme_id"),
        MemberIdentity.kind == bindparam("kind"),
        MemberIdentity.namespace == bindparam("namespace"),
        MemberIdentity.value.in_(bindparam("values", expanding=True)),
    )
)


def find_identities(
    session: Session, *, programme: Programme, keys: Iterable[IdentityKey]
) -> dict[tuple[str, str, str], uuid.UUID]:
    """Map each identity that exists to its member id: one indexed ``IN`` query per kind."""
    groups: dict[tuple[str, str], set[str]] = {}
    for key in keys:
        groups.setdefault((key.kind, key.namespace), set()).add(key.value)
    found: dict[tuple[str, str, str], uuid.UUID] = {}
    for (kind, namespace), values in groups.items():
        ordered = sorted(values)
        for start in range(0, len(ordered), 1000):
            params = {
                "programme_id": programme.id,
                "kind": kind,
                "namespace": namespace,
                "values": ordered[start : start + 1000],
            }
            for value, member_id in _IDENTITY_LOOKUP.rows(session, params):
                found[(kind, namespace, value)] = member_id
    return found


def check_free(session: Session, programme: Programme, keys: list[IdentityKey]) -> None:
    taken = find_identities(session, programme=programme, keys=keys)
    clashes = [k for k in keys if (k.kind, k.namespace, k.value) in taken]
    if clashes:
        raise Conflict(
            "identity already belongs to another member: "
            + ", ".join(".".join(str(p) for p in k.field) for k in clashes),
            fields=[FieldError(k.field, f"{k.kind} {k.value!r} is taken") for k in clashes],
        )


def keys_of_create(programme: Programme, data: MemberCreate) -> list[IdentityKey]:
    """The normalised identities of an enrolment request, each named by its field; 422 if one
    is given twice."""
    keys = identity_keys(
        programme,
        card=data.card,
        email=data.email,
        phone=data.phone,
        external=[(x.namespace, x.value) for x in data.external_ids],
    )
    check_duplicates_within(keys)
    return keys


def insert_member(
    session: Session,
    *,
    programme: Programme,
    data: MemberCreate,
    status: str = "active",
    now: datetime | None = None,
) -> Member:
    """Write a member with its identities and consents, and nothing else: no enrolment event,
    no programme run. Fixtures and benchmarks set members up with it (as a legacy base that was
    never enrolled through Fidelia would be); people join through
    :func:`fidelia.intake.enrolment.enrol`, which every door uses. 409 naming the field of a
    taken identity."""
    keys = keys_of_create(programme, data)
    check_free(session, programme, keys)
    now = now or utcnow()
    member = new_member(programme, data, status=status, enrolled_at=data.enrolled_at or now)
    first = status_change(
        member,
        to=status,
        reason="inserted",
        at=member.enrolled_at,
        actor="system",
        event_id=None,
        first=True,
    )
    rows = [member, *identity_rows(programme, member.id, keys), MemberStatusChange(**first)]
    _insert(session, programme, keys, rows)
    for consent in data.consents:
        set_consent(
            session,
            programme=programme,
            member=member,
            channel=consent.channel,
            granted=consent.granted,
            at=member.enrolled_at,
            source=consent.source or f"enrolment:{data.channel}",
        )
    return member


def _insert(
    session: Session, programme: Programme, keys: list[IdentityKey], rows: list[Any]
) -> None:
    """Insert a member's rows; an identity taken meanwhile by a concurrent writer is a 409."""
    try:
        with session.begin_nested():
            session.add_all(rows)
    except IntegrityError:
        check_free(session, programme, keys)  # names the field of the identity now taken
        raise


def check_duplicates_within(keys: list[IdentityKey]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for key in keys:
        triple = (key.kind, key.namespace, key.value)
        if triple in seen:
            raise ValidationFailed.on(key.field, "the same identity is given twice")
        seen.add(triple)


def new_member(
    programme: Programme, data: MemberCreate, *, status: str, enrolled_at: datetime
) -> Member:
    return Member(
        id=uuid7(),
        programme_id=programme.id,
        status=status,
        enrolment_channel=data.channel,
        enrolment_store=data.store,
        enrolled_at=enrolled_at,
        first_name=data.first_name,
        last_name=data.last_name,
        birth_date=data.birth_date,
        locale=data.locale,
        postal_code=data.postal_code,
        attributes=data.attributes or {},
    )


def identity_rows(
    programme: Programme, member_id: uuid.UUID, keys: Iterable[IdentityKey]
) -> list[MemberIdentity]:
    return [
        MemberIdentity(
            id=uuid7(),
            programme_id=programme.id,
            member_id=member_id,
            kind=k.kind,
            namespace=k.namespace,
            value=k.value,
        )
        for k in keys
    ]


def get(session: Session, *, programme: Programme, member_id: uuid.UUID) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.programme_id != programme.id:
        raise NotFound(f"member {member_id} does not exist")
    return member


def get_for_update(session: Session, *, programme: Programme, member_id: uuid.UUID) -> Member:
    """The member row, locked until the end of the transaction (every member write goes here)."""
    member = session.scalar(
        select(Member)
        .where(Member.id == member_id, Member.programme_id == programme.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if member is None:
        raise NotFound(f"member {member_id} does not exist")
    return member


def resolve(
    session: Session,
    *,
    programme: Programme,
    ref: MemberRef,
    loc: tuple[str | int, ...] = ("member",),
) -> tuple[uuid.UUID | None, list[IdentityKey]]:
    """The member a reference names (or None), and the normalised identities it gave.

    When several identities are given, all that exist must belong to the same member.
    """
    keys = keys_of_ref(programme, ref, loc=loc)
    found = find_identities(session, programme=programme, keys=keys)
    owners = {
        found[(k.kind, k.namespace, k.value)]
        for k in keys
        if (k.kind, k.namespace, k.value) in found
    }
    if ref.id is not None:
        member = session.get(Member, ref.id)
        if member is None or member.programme_id != programme.id:
            raise NotFound(f"member {ref.id} does not exist")
        owners.add(member.id)
    if len(owners) > 1:
        raise Conflict(
            "the identities given belong to different members",
            fields=[FieldError(loc, "identities of different members")],
        )
    return (owners.pop() if owners else None), keys


def lookup(
    session: Session, *, programme: Programme, ref: MemberRef, loc: tuple[str | int, ...] = ()
) -> Member:
    """The member one of ``ref``'s identities belongs to; ``loc`` prefixes the fields named
    in errors (``("query",)`` for the lookup endpoint)."""
    member_id, _ = resolve(session, programme=programme, ref=ref, loc=loc)
    if member_id is None:
        raise NotFound("no member has this identity")
    return get(session, programme=programme, member_id=member_id)


def list_members(
    session: Session,
    *,
    programme: Programme,
    status: str | None = None,
    channel: str | None = None,
    store: str | None = None,
    enrolled_after: datetime | None = None,
    enrolled_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Member], str | None]:
    """Members in creation order, filtered, one page after ``cursor``."""
    query = select(Member).where(Member.programme_id == programme.id)
    if status:
        query = query.where(Member.status == status)
    if channel:
        query = query.where(Member.enrolment_channel == channel)
    if store:
        query = query.where(Member.enrolment_store == store)
    if enrolled_after:
        query = query.where(Member.enrolled_at >= enrolled_after)
    if enrolled_before:
        query = query.where(Member.enrolled_at < enrolled_before)
    if cursor:
        try:
            (after,) = decode_cursor(cursor)
            query = query.where(Member.id > uuid.UUID(after))
        except ValueError as exc:
            raise ValidationFailed.on(("query", "cursor"), "not a cursor this API gave") from exc
    members = list(session.scalars(query.order_by(Member.id).limit(limit + 1)))
    next_cursor = encode_cursor([str(members[limit - 1].id)]) if len(members) > limit else None
    return members[:limit], next_cursor


def update_profile(session: Session, *, member: Member, profile: Profile) -> Member:
    """Apply the fields present in ``profile``; attributes are merged key by key (null deletes)."""
    apply_profile(member, profile)
    session.flush()
    _updated(session, member, {"fields": sorted(profile.model_dump(exclude_unset=True))})
    return member


def _updated(session: Session, member: Member, data: dict[str, Any]) -> None:
    """A ``member.updated`` notice (webhooks, feed) in the caller's transaction."""
    notice = Notice("member.updated", member.id, utcnow(), data)
    record_many(session, member.programme_id, [notice])


def apply_profile(member: Member, profile: Profile, *, fill_gaps: bool = False) -> None:
    """Set the fields present in ``profile`` and merge its attributes key by key (null
    deletes). ``fill_gaps``: only the fields and attributes the member has no value for (an
    enrolment of a member already enrolled adds what we did not know, and overwrites nothing)."""
    changes = profile.model_dump(exclude_unset=True)
    attributes = changes.pop("attributes", None)
    for name, value in changes.items():
        if not fill_gaps or getattr(member, name) is None:
            setattr(member, name, value)
    if attributes is not None:
        merged = dict(member.attributes or {})
        for key, value in attributes.items():
            if value is None:
                if not fill_gaps:
                    merged.pop(key, None)
            elif not fill_gaps or merged.get(key) is None:
                merged[key] = value
        member.attributes = merged


def add_identity(
    session: Session, *, programme: Programme, member: Member, key: IdentityKey
) -> None:
    check_free(session, programme, [key])
    _insert(session, programme, [key], list(identity_rows(programme, member.id, [key])))
    _updated(session, member, {"fields": ["identities"], "identity": key.kind})


def set_consent(
    session: Session,
    *,
    programme: Programme,
    member: Member,
    channel: str,
    granted: bool,
    at: datetime,
    source: str,
) -> Consent:
    """Record a consent change in the history and update the current state.

    A change older than the current state is kept in the history but does not override it.
    """
    current = session.scalar(
        select(Consent).where(Consent.member_id == member.id, Consent.channel == channel)
    )
    consent = add_consent(
        session,
        programme=programme,
        member=member,
        current=current,
        channel=channel,
        granted=granted,
        at=at,
        source=source,
    )
    session.flush()
    return consent


def add_consent(
    session: Session,
    *,
    programme: Programme,
    member: Member,
    current: Consent | None,
    channel: str,
    granted: bool,
    at: datetime,
    source: str,
) -> Consent:
    """``set_consent`` when the caller knows the current state (``current``, None if there is
    none yet): no query, no flush."""
    session.add(
        ConsentChange(
            id=uuid7(),
            programme_id=programme.id,
            member_id=member.id,
            channel=channel,
            granted=granted,
            changed_at=at,
            source=source,
        )
    )
    if current is None:
        current = Consent(
            programme_id=programme.id,
            member_id=member.id,
            channel=channel,
            granted=granted,
            changed_at=at,
            source=source,
        )
        session.add(current)
    elif at >= current.changed_at:
        current.granted, current.changed_at, current.source = granted, at, source
    return current


def consent_history(session: Session, *, member: Member) -> list[ConsentChange]:
    query = (
        select(ConsentChange)
        .where(ConsentChange.member_id == member.id)
        .order_by(ConsentChange.changed_at, ConsentChange.id)
    )
    return list(session.scalars(query))


def set_status(
    session: Session,
    *,
    member: Member,
    status: str,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> Member:
    """Move the member along ``STATUS_TRANSITIONS`` and keep the change in its history, with
    the reason and who made it. Asking for the current status changes (and records) nothing."""
    if status == member.status:
        return member
    if status not in STATUS_TRANSITIONS[member.status]:
        raise Conflict(
            f"a {member.status} member cannot become {status}",
            fields=[FieldError(("status",), f"not allowed for a {member.status} member")],
        )
    change = status_change(
        member, to=status, reason=reason, at=at or utcnow(), actor=actor, event_id=None
    )
    session.add(MemberStatusChange(**change))
    member.status = status
    session.flush()
    _updated(session, member, {"fields": ["status"], "status": status, "reason": reason})
    return member


def status_change(
    member: Member,
    *,
    to: str,
    reason: str | None,
    at: datetime,
    actor: str,
    event_id: uuid.UUID | None,
    first: bool = False,
) -> dict[str, Any]:
    """A ``member_status_changes`` row (for bulk inserts too); ``first``: the member's first
    status, set when they joined (no ``from_status``)."""
    return {
        "id": uuid7(),
        "programme_id": member.programme_id,
        "member_id": member.id,
        "from_status": None if first else member.status,
        "to_status": to,
        "reason": reason,
        "at": at,
        "actor": actor,
        "event_id": event_id,
        "recorded_at": utcnow(),
    }


def status_history(session: Session, *, member: Member) -> list[MemberStatusChange]:
    """The member's status changes, oldest first."""
    query = (
        select(MemberStatusChange)
        .where(MemberStatusChange.member_id == member.id)
        .order_by(MemberStatusChange.at, MemberStatusChange.id)
    )
    return list(session.scalars(query))


def details(session: Session, *, member: Member) -> dict[str, Any]:
    """The member with its identities and consents, ready for ``MemberOut``."""
    identities = session.scalars(
        select(MemberIdentity)
        .where(MemberIdentity.member_id == member.id)
        .order_by(MemberIdentity.kind, MemberIdentity.namespace, MemberIdentity.value)
    )
    consents = session.scalars(
        select(Consent).where(Consent.member_id == member.id).order_by(Consent.channel)
    )
    data = {c.key: getattr(member, c.key) for c in Member.__table__.columns}
    data["identities"] = list(identities)
    data["consents"] = list(consents)
    return data


def key_of(programme: Programme, data: IdentityAdd) -> IdentityKey:
    """Normalise an identity to add; external ids need their namespace."""
    if data.kind == EXTERNAL:
        if not data.namespace:
            raise ValidationFailed.on("namespace", "an external id needs its namespace")
        return identity_keys(programme, external=[(data.namespace, data.value)])[0]
    if data.namespace:
        raise ValidationFailed.on("namespace", f"a {data.kind} has no namespace")
    loc = ("value",)
    if data.kind == CARD:
        return IdentityKey(CARD, "", normalise_card(data.value, loc=loc), loc)
    if data.kind == EMAIL:
        return IdentityKey(EMAIL, "", normalise_email(data.value, loc=loc), loc)
    phone = normalise_phone(data.value, region=programme.country, loc=loc)
    return IdentityKey(PHONE, "", phone, loc)


def facts(member: Member) -> dict[str, Any]:
    """What rules read of a member's profile as ``member.attributes.*``: the custom attributes,
    then birth date (ISO), postal code, locale, status and where they enrolled."""
    return {
        **member.attributes,
        "birth_date": member.birth_date.isoformat() if member.birth_date else None,
        "postal_code": member.postal_code,
        "locale": member.locale,
        "status": member.status,
        "enrolment_channel": member.enrolment_channel,
        "enrolment_store": member.enrolment_store,
    }
