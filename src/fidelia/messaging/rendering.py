"""Rendering a queued message: its member's context, the template in their locale for the
chosen channel, the survey's links, and the HTML's tracked links and open pixel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fidelia.config import get_settings
from fidelia.errors import FieldError, ValidationFailed
from fidelia.messaging import templates, tracking
from fidelia.messaging.context import context_for
from fidelia.messaging.schemas import Content, MessagingSection, Survey
from fidelia.models import Member, Programme
from fidelia.models.messaging import Message


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


def render_message(
    session: Session,
    programme: Programme,
    section: MessagingSection,
    message: Message,
    locales: dict[str, Content],
    survey: Survey | None,
    now: datetime,
    *,
    key: bytes,
    points: dict[str, int] | None = None,
) -> None:
    """Render ``message`` for its channel (its content, links and survey set on it); 422 with
    the part at fault when the template fails for this member."""
    member = session.get(Member, message.member_id)
    assert member is not None
    locale = pick_locale(locales, member.locale, programme.locale)
    base = public_url(section)
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
        points=points,
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
