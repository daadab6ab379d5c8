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

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.config import get_settings
from fidelia.errors import FieldError, NotFound, ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.kit.ids import uuid7
from fidelia.messaging import log, templates, tracking
from fidelia.messaging.channels import ADAPTERS
from fidelia.messaging.context import context_for
from fidelia.messaging.schemas import Content, MessagingSection, Survey
from fidelia.models import Consent, Member, MemberIdentity, Programme, ProgrammeVersion
from fidelia.models.messaging import Message

DELIVER_JOB = "messaging.deliver"
CLOSED = frozenset({"failed", "not_sent", "expired"})
_CACHE: dict[tuple[uuid.UUID, int], MessagingSection | None] = {}
_LOCK = threading.Lock()


def section_for(session: Session, programme: Programme) -> MessagingSection | None:
    """The live document's ``messaging`` section (cached per immutable version)."""
    key = (programme.id, programme.live_version)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    section = None
    if programme.live_version:
        raw = session.scalar(
            select(ProgrammeVersion.document).where(
                ProgrammeVersion.programme_id == programme.id,
                ProgrammeVersion.version == programme.live_version,
            )
        )
        if raw and raw.get("messaging"):
            section = MessagingSection.model_validate(raw["messaging"])
    with _LOCK:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = section
    return section


def require_section(session: Session, programme: Programme) -> MessagingSection:
    section = section_for(session, programme)
    if section is None:
        raise ValidationFailed.on(
            "channels", "the programme document has no messaging section: configure a channel"
        )
    return section


def public_url(section: MessagingSection) -> str:
    return (section.public_url or get_settings().public_url).rstrip("/")


def pick_locale(available: dict[str, Content], *wanted: str | None) -> str:
    """The member's locale, else its language, else the programme's, else the first given."""
    for tag in wanted:
        if not tag:
            continue
        for candidate in (tag, tag.split("-")[0].lower()):
            if candidate in available:
                return candidate
        for key in available:
            if key.split("-")[0] == tag.split("-")[0].lower():
                return key
    return next(iter(available))


def fits(content: Content, channel: str) -> str | None:
    """Why ``content`` cannot go on ``channel`` (None: it can)."""
    if channel == "email" and (content.subject is None or content.text is None):
        return "the template has no subject and text for email"
    if channel == "sms" and content.sms is None and content.text is None:
        return "the template has no sms text"
    if channel in ("inbox", "webhook") and content.text is None:
        return "the template has no text"
    return None


def addresses(session: Session, member: Member) -> dict[str, str]:
    """The member's email and phone (the first of each kind)."""
    rows = session.execute(
        select(MemberIdentity.kind, MemberIdentity.value)
        .where(MemberIdentity.member_id == member.id, MemberIdentity.kind.in_(("email", "phone")))
        .order_by(MemberIdentity.created_at)
    )
    found: dict[str, str] = {}
    for kind, value in rows:
        found.setdefault(kind, value)
    return found


def consents(session: Session, member: Member) -> dict[str, bool]:
    rows = session.execute(
        select(Consent.channel, Consent.granted).where(Consent.member_id == member.id)
    )
    return {channel: bool(granted) for channel, granted in rows}


def consent_needed(section: MessagingSection, channel: str) -> str | None:
    config = getattr(section.channels, channel)
    own = getattr(config, "consent", None)
    return own if channel in ("inbox", "webhook") else ADAPTERS[channel].consent


def reach(
    session: Session, section: MessagingSection, member: Member, channel: str, kind: str
) -> tuple[str | None, str | None]:
    """(the address, None) when ``channel`` reaches the member, else (None, why not)."""
    if member.status in ("closed", "merged"):
        return None, f"member is {member.status}"
    kind_of_address = ADAPTERS[channel].address_kind
    address = str(member.id)
    if kind_of_address is not None:
        found = addresses(session, member).get(kind_of_address)
        if found is None:
            return None, f"no {kind_of_address}"
        address = found
    needed = consent_needed(section, channel)
    if kind == "marketing" and needed and not consents(session, member).get(needed, False):
        return None, f"no {needed} consent"
    return address, None


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
    section = require_section(session, programme)
    channels = check_channels(section, request.channels)
    locales, survey, template_kind = resolve_content(section, request.template, request.content)
    if request.idempotency_key is not None:
        existing = session.scalar(
            select(Message).where(
                Message.programme_id == programme.id,
                Message.idempotency_key == request.idempotency_key,
            )
        )
        if existing is not None:
            return existing
    member = request.member
    message = Message(
        id=uuid7(),
        programme_id=programme.id,
        member_id=member.id,
        idempotency_key=request.idempotency_key,
        source=request.source,
        template=request.template,
        kind=request.kind or template_kind,
        content_key=request.content_key,
        channels=channels,
        status="queued",
        due_at=now,
        expires_at=request.expires_at,
        links=[],
        attempts=0,
        data={"event": request.event} if request.event else {},
    )
    session.add(message)
    log.add(session, message, "queued", now)
    if request.content_key is not None and _content_used(session, message):
        return _not_sent(session, message, f"content key {request.content_key!r} already used", now)
    why: list[str] = []
    for name in channels:
        content = locales[pick_locale(locales, member.locale, programme.locale)]
        reason = fits(content, name)
        address = None
        if reason is None:
            address, reason = reach(session, section, member, name, message.kind)
        if address is None:
            why.append(f"{name}: {reason}")
            continue
        message.channel, message.recipient = name, address
        break
    if message.channel is None:
        return _not_sent(session, message, "no reachable channel (" + "; ".join(why) + ")", now)
    _render(session, programme, section, message, locales, survey, now)
    session.flush()
    jobs.enqueue(
        session,
        kind=DELIVER_JOB,
        payload={"message_id": str(message.id)},
        due_at=now,
        programme_id=programme.id,
    )
    return message


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
    session.flush()
    return message


def _render(
    session: Session,
    programme: Programme,
    section: MessagingSection,
    message: Message,
    locales: dict[str, Content],
    survey: Survey | None,
    now: datetime,
) -> None:
    member = session.get(Member, message.member_id)
    assert member is not None
    locale = pick_locale(locales, member.locale, programme.locale)
    base = public_url(section)
    key = tracking.key_for(session, programme.id)
    assert key is not None
    content = locales[locale]
    names = templates.names_of(content.subject, content.text, content.html, content.sms)
    context = context_for(
        session,
        programme=programme,
        member=member,
        event=message.data.get("event", {}),
        now=now,
        public_url=base,
        names=names,
    )
    context["links"] = {"unsubscribe": f"{base}/unsubscribe/{tracking.sign(key, message.id, 'u')}"}
    if survey is not None:
        context["survey"] = survey_context(key, message.id, survey, locale, base)
        message.data = {**message.data, "survey": survey.model_dump(mode="json")}
    rendered = render_content(locales[locale], message.channel or "email", context)
    message.locale = locale
    message.subject, message.body_text = rendered.get("subject"), rendered.get("text")
    message.body_html = rendered.get("html")
    if message.channel == "sms":
        message.body_text = rendered.get("sms") or rendered.get("text")
    if message.body_html is not None:
        message.body_html, message.links = instrument(key, message.id, message.body_html, base)


def render_content(content: Content, channel: str, context: dict[str, Any]) -> dict[str, str]:
    """Render the parts of ``content`` that ``channel`` uses; 422 naming the part on error."""
    parts = {"email": ("subject", "text", "html"), "sms": ("sms", "text")}.get(
        channel, ("subject", "text")
    )
    out: dict[str, str] = {}
    for name in parts:
        source = getattr(content, name)
        if source is None or (channel == "sms" and name == "text" and "sms" in out):
            continue
        try:
            out[name] = templates.render(source, context, html=name == "html")
        except templates.TemplateProblem as exc:
            raise ValidationFailed(
                f"{name}: {exc}", fields=[FieldError(("content", name), str(exc))]
            ) from exc
    return out


def survey_context(
    key: bytes, message_id: uuid.UUID, survey: Survey, locale: str, base: str
) -> dict[str, Any]:
    token = tracking.sign(key, message_id, "s")
    scores = range(11) if survey.scale == "nps" else range(1, 6)
    question = survey.question.get(locale) or next(iter(survey.question.values()), "")
    return {
        "code": survey.code,
        "scale": survey.scale,
        "question": question,
        "choices": [{"score": n, "url": f"{base}/survey/{token}?score={n}"} for n in scores],
        "comment_url": f"{base}/survey/{token}",
    }


def instrument(key: bytes, message_id: uuid.UUID, html: str, base: str) -> tuple[str, list[str]]:
    """Links of the HTML through the click redirect (not our own pages), and the open pixel."""
    links = [url for url in templates.links_of(html) if not url.startswith(base + "/")]
    for i, url in enumerate(links):
        tracked = f"{base}/t/c/{tracking.sign(key, message_id, f'c{i}')}"
        html = html.replace(f'"{url}"', f'"{tracked}"').replace(f"'{url}'", f"'{tracked}'")
    pixel = (
        f'<img src="{base}/t/o/{tracking.sign(key, message_id, "o")}" width="1" height="1" '
        'alt="" style="display:none">'
    )
    at = html.lower().rfind("</body>")
    html = html[:at] + pixel + html[at:] if at >= 0 else html + pixel
    return html, links


def get(session: Session, *, programme: Programme, message_id: uuid.UUID) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.programme_id != programme.id:
        raise NotFound(f"message {message_id} does not exist")
    return message
