"""Sending: a message is queued in the caller's transaction and delivered after commit by a job.

:func:`queue` checks the request (template, channels configured), picks the first channel of
the preference the member can be reached on (an address, and for marketing the consent), renders
the template in the member's locale for that channel, and writes the message with a
``messaging.deliver`` job (transactional outbox). A member no channel reaches gets a message
``not_sent`` with the reason per channel; so does a second message with a content key already
used for the member (never the same content twice, on any channel). The delivery itself
(consent again, contact pressure, the provider, retries) is in :mod:`fidelia.messaging.jobs`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.errors import NotFound, ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.kit.ids import uuid7
from fidelia.ledger.wallets import list_wallets
from fidelia.messaging import log, templates, tracking
from fidelia.messaging.channels import ADAPTERS
from fidelia.messaging.rendering import pick_locale, render_message
from fidelia.messaging.schemas import Content, MessagingSection, Survey
from fidelia.models import Account, Consent, Member, MemberIdentity, Programme
from fidelia.models.messaging import BouncedAddress, Message

DELIVER_JOB = "messaging.deliver"
CLOSED = frozenset({"failed", "not_sent", "expired"})


def job_key(message_id: uuid.UUID | str) -> str:
    """The idempotency key of a message's first delivery job: batched delivery closes it when
    it claims the message (see :mod:`fidelia.messaging.batch`)."""
    return f"{DELIVER_JOB}:{message_id}"


def section_for(session: Session, programme: Programme) -> MessagingSection | None:
    """The live document's ``messaging`` section (cached per immutable version)."""
    return versions.section(session, programme, "messaging", _parse)


def _parse(raw: Mapping[str, Any]) -> MessagingSection | None:
    found = raw.get("messaging")
    return MessagingSection.model_validate(found) if found else None


def require_section(session: Session, programme: Programme) -> MessagingSection:
    section = section_for(session, programme)
    if section is None:
        raise ValidationFailed.on(
            "channels", "the programme document has no messaging section: configure a channel"
        )
    return section


def fits(content: Content, channel: str) -> str | None:
    """Why ``content`` cannot go on ``channel`` (None: it can)."""
    if channel == "email" and (content.subject is None or content.text is None):
        return "the template has no subject and text for email"
    if channel == "sms" and content.sms is None and content.text is None:
        return "the template has no sms text"
    if channel in ("inbox", "webhook") and content.text is None:
        return "the template has no text"
    return None


def consents(session: Session, member: Member) -> dict[str, bool]:
    rows = session.execute(
        select(Consent.channel, Consent.granted).where(Consent.member_id == member.id)
    )
    return {channel: bool(granted) for channel, granted in rows}


def consent_needed(section: MessagingSection, channel: str) -> str | None:
    config = getattr(section.channels, channel)
    own = getattr(config, "consent", None)
    return own if channel in ("inbox", "webhook") else ADAPTERS[channel].consent


@dataclass(frozen=True)
class Request:
    """What to send; ``content`` per locale, or ``template`` (a code of the document)."""

    member: Member
    template: str | None
    content: dict[str, Content] | None
    channels: list[str]
    kind: str | None
    content_key: str | None
    event: dict[str, Any]
    expires_at: datetime | None
    idempotency_key: str | None
    source: str


def resolve_content(
    section: MessagingSection, template: str | None, content: dict[str, Content] | None
) -> tuple[dict[str, Content], Survey | None, str]:
    """The content per locale, the survey and the template's kind (422 on an unknown code)."""
    if template is None:
        assert content is not None
        return content, None, "marketing"
    found = section.template(template)
    if found is None:
        raise ValidationFailed.on("template", f"no template {template!r} in the document")
    return found.locales, found.survey, found.kind


def check_channels(section: MessagingSection, channels: list[str]) -> list[str]:
    chosen = channels or list(section.fallback)
    if not chosen:
        raise ValidationFailed.on("channels", "give channels: the document has no fallback")
    configured = set(section.channels.configured())
    for i, name in enumerate(chosen):
        if name not in configured:
            raise ValidationFailed.on(("channels", i), f"channel {name!r} is not configured")
    return chosen


def queue(session: Session, *, programme: Programme, request: Request, now: datetime) -> Message:
    """Queue one message (see the module's docstring); a resend of an idempotency key answers
    the first message."""
    return queue_many(session, programme=programme, requests=[request], now=now)[0]


def queue_many(
    session: Session, *, programme: Programme, requests: Sequence[Request], now: datetime
) -> list[Message]:
    """Queue many messages at once (a scheduled send to a segment): the members' addresses,
    consents, open content keys, idempotency keys and, when a template reads them, balances are
    read in one query each; messages, their log rows and their jobs are inserted together.
    Traits, expiring points and the tier, when a template reads them, are read per member."""
    section = require_section(session, programme)
    plans = [_plan(section, request) for request in requests]
    names = frozenset().union(*(p.names for p in plans)) if plans else frozenset()
    known = _prefetch(session, programme, requests, with_points="points" in names)
    key = tracking.key_for(session, programme.id)
    assert key is not None
    out: list[Message] = []
    new_jobs: list[jobs.NewJob] = []
    for request, plan in zip(requests, plans, strict=True):
        idem = request.idempotency_key
        if idem is not None and idem in known.existing:
            out.append(known.existing[idem])
            continue
        message = _message(programme, request, plan, now)
        session.add(message)
        log.add(session, message, "queued", now)
        if idem is not None:
            known.existing[idem] = message
        out.append(message)
        why = _choose(section, programme, request, plan, message, known)
        if why is not None:
            _not_sent(session, message, why, now)
            continue
        if request.content_key is not None:
            known.used.add((message.member_id, request.content_key))
        render_message(session, programme, section, message, plan.locales, plan.survey, now,
                       key=key, points=known.points.get(message.member_id))  # fmt: skip
        new_jobs.append((DELIVER_JOB, {"message_id": str(message.id)}, now, programme.id))
    session.flush()
    if new_jobs:
        jobs.enqueue_many(session, new_jobs, keys=[job_key(j[1]["message_id"]) for j in new_jobs])
    return out


@dataclass(frozen=True)
class _Plan:
    channels: list[str]
    locales: dict[str, Content]
    survey: Survey | None
    kind: str
    names: frozenset[str]


def _plan(section: MessagingSection, request: Request) -> _Plan:
    channels = check_channels(section, request.channels)
    locales, survey, kind = resolve_content(section, request.template, request.content)
    names = frozenset().union(
        *(templates.names_of(c.subject, c.text, c.html, c.sms) for c in locales.values())
    )
    return _Plan(channels, locales, survey, request.kind or kind, names)


@dataclass
class _Known:
    addresses: dict[uuid.UUID, dict[str, str]]
    consents: dict[uuid.UUID, dict[str, bool]]
    used: set[tuple[uuid.UUID, str]]
    existing: dict[str, Message]
    points: dict[uuid.UUID, dict[str, int]]
    bounced: set[str] = field(default_factory=set)  # addresses a hard bounce proved dead


def _chunks(ids: list[uuid.UUID], size: int = 5000) -> list[list[uuid.UUID]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _prefetch(
    session: Session, programme: Programme, requests: Sequence[Request], *, with_points: bool
) -> _Known:
    ids = sorted({r.member.id for r in requests})
    known = _Known({}, {}, set(), {}, {})
    keys = sorted({r.content_key for r in requests if r.content_key is not None})
    idems = sorted({r.idempotency_key for r in requests if r.idempotency_key is not None})
    wallets = (
        {w.id: w.code for w in list_wallets(session, programme=programme)} if with_points else {}
    )
    for chunk in _chunks(ids):
        rows = session.execute(
            select(MemberIdentity.member_id, MemberIdentity.kind, MemberIdentity.value)
            .where(MemberIdentity.member_id.in_(chunk), MemberIdentity.kind.in_(("email", "phone")))
            .order_by(MemberIdentity.created_at)
        )
        for member_id, kind, value in rows:
            known.addresses.setdefault(member_id, {}).setdefault(kind, value)
        emails = [a["email"] for m in chunk if "email" in (a := known.addresses.get(m, {}))]
        if emails:
            known.bounced |= set(
                session.scalars(
                    select(BouncedAddress.address).where(
                        BouncedAddress.programme_id == programme.id,
                        BouncedAddress.address.in_(emails),
                    )
                )
            )
        for member_id, channel, granted in session.execute(
            select(Consent.member_id, Consent.channel, Consent.granted).where(
                Consent.member_id.in_(chunk)
            )
        ):
            known.consents.setdefault(member_id, {})[channel] = bool(granted)
        if keys:
            known.used |= {
                (m, k)
                for m, k in session.execute(
                    select(Message.member_id, Message.content_key).where(
                        Message.member_id.in_(chunk),
                        Message.content_key.in_(keys),
                        Message.status.not_in(CLOSED),
                    )
                )
                if k is not None
            }
        if with_points:
            for owner, wallet_id, available in session.execute(
                select(Account.member_id, Account.wallet_id, Account.available).where(
                    Account.member_id.in_(chunk)
                )
            ):
                if wallet_id in wallets and owner is not None:
                    known.points.setdefault(owner, dict.fromkeys(wallets.values(), 0))
                    known.points[owner][wallets[wallet_id]] = int(available)
    if with_points:
        for member_id in ids:
            known.points.setdefault(member_id, dict.fromkeys(wallets.values(), 0))
    if idems:
        known.existing = {
            m.idempotency_key or "": m
            for m in session.scalars(
                select(Message).where(
                    Message.programme_id == programme.id, Message.idempotency_key.in_(idems)
                )
            )
        }
    return known


def _message(programme: Programme, request: Request, plan: _Plan, now: datetime) -> Message:
    return Message(
        id=uuid7(), programme_id=programme.id, member_id=request.member.id,
        idempotency_key=request.idempotency_key, source=request.source,
        template=request.template, kind=plan.kind, content_key=request.content_key,
        channels=plan.channels, status="queued", due_at=now, expires_at=request.expires_at,
        links=[], attempts=0, data={"event": request.event} if request.event else {},
    )  # fmt: skip


def _choose(
    section: MessagingSection,
    programme: Programme,
    request: Request,
    plan: _Plan,
    message: Message,
    known: _Known,
) -> str | None:
    """Set the message's channel and recipient; else why it cannot be sent."""
    member = request.member
    key = request.content_key
    if key is not None and (member.id, key) in known.used:
        return f"content key {key!r} already used"
    content = plan.locales[pick_locale(plan.locales, member.locale, programme.locale)]
    why: list[str] = []
    for name in plan.channels:
        reason = fits(content, name) or _unreachable(section, member, name, plan.kind, known)
        if isinstance(reason, str):
            why.append(f"{name}: {reason}")
            continue
        message.channel, message.recipient = name, reason[0]
        return None
    return "no reachable channel (" + "; ".join(why) + ")"


def _unreachable(
    section: MessagingSection, member: Member, channel: str, kind: str, known: _Known
) -> str | tuple[str]:
    """Why ``channel`` cannot reach the member, or (the address,)."""
    if member.status in ("closed", "merged"):
        return f"member is {member.status}"
    kind_of_address = ADAPTERS[channel].address_kind
    address = str(member.id)
    if kind_of_address is not None:
        found = known.addresses.get(member.id, {}).get(kind_of_address)
        if found is None:
            return f"no {kind_of_address}"
        if found in known.bounced:
            return f"{kind_of_address} address bounced"
        address = found
    needed = consent_needed(section, channel)
    if kind == "marketing" and needed and not known.consents.get(member.id, {}).get(needed):
        return f"no {needed} consent"
    return (address,)


def bounced(session: Session, programme_id: uuid.UUID, address: str) -> bool:
    """Whether a hard bounce proved ``address`` dead for the programme."""
    found = session.get(BouncedAddress, (programme_id, address))
    return found is not None


def _content_used(session: Session, message: Message) -> bool:
    return (
        session.scalar(
            select(Message.id)
            .where(
                Message.member_id == message.member_id,
                Message.content_key == message.content_key,
                Message.id != message.id,
                Message.status.not_in(CLOSED),
            )
            .limit(1)
        )
        is not None
    )


def _not_sent(session: Session, message: Message, reason: str, now: datetime) -> Message:
    message.status, message.reason = "not_sent", reason
    log.add(session, message, "not_sent", now, reason)
    return message


def get(session: Session, *, programme: Programme, message_id: uuid.UUID) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.programme_id != programme.id:
        raise NotFound(f"message {message_id} does not exist")
    return message
