"""Survey answers: a one-click rating from a message, then an optional comment.

The rating is recorded as a ``survey_answered`` event through the intake (``ingest``, passed in
by the delivery layer: the intake sits above messaging), in the same transaction as the answer
kept on the message, so earning rules can reward it and segments can count it. The event's id
is derived from the message, so a second click answers the first rating and earns nothing
twice. A comment is a ``survey_commented`` event likewise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fidelia.errors import Conflict, FideliaError, NotFound, ValidationFailed
from fidelia.events.schemas import EventIn, EventOutcome, MemberRef
from fidelia.messaging import tracking
from fidelia.models import Programme
from fidelia.models.messaging import Message

Ingest = Callable[..., Sequence[EventOutcome]]
MAX_COMMENT = 4000


def _event(
    session: Session,
    ingest: Ingest,
    message: Message,
    kind: str,
    props: dict[str, Any],
    now: datetime,
) -> None:
    programme = session.get(Programme, message.programme_id)
    assert programme is not None
    event = EventIn(
        id=f"{kind}-{message.id}",
        type=kind,
        occurred_at=now,
        member=MemberRef(id=message.member_id),
        properties=props,
    )
    outcome = ingest(session, programme=programme, events=[event], now=now, actor="survey")[0]
    if outcome.status == "rejected":
        raise FideliaError(outcome.detail or "the answer could not be recorded")


def survey_of(session: Session, token: str) -> tuple[Message, dict[str, Any]]:
    message, _ = tracking.open_token(session, token, "s")
    survey = message.data.get("survey")
    if not survey:
        raise NotFound("no such survey")
    return message, survey


def answer(session: Session, *, token: str, score: int, ingest: Ingest, now: datetime) -> Message:
    """Record the rating (once: a second, different rating is a 409)."""
    message, survey = survey_of(session, token)
    low, high = (0, 10) if survey["scale"] == "nps" else (1, 5)
    if not low <= score <= high:
        raise ValidationFailed.on(("query", "score"), f"a score is from {low} to {high}")
    previous = message.data.get("answer")
    if previous is not None:
        if previous["score"] != score:
            raise Conflict(f"this survey was already answered ({previous['score']})")
        return message
    props = {
        "survey": survey["code"],
        "scale": survey["scale"],
        "score": score,
        "message_id": str(message.id),
        "template": message.template,
    }
    _event(session, ingest, message, "survey_answered", props, now)
    message.data = {**message.data, "answer": {"score": score, "at": now.isoformat()}}
    tracking.advance(session, message, "clicked", now) if message.status in tracking.RANK else None
    return message


def comment(session: Session, *, token: str, text: str, ingest: Ingest, now: datetime) -> Message:
    """Record the comment that follows a rating (once)."""
    message, survey = survey_of(session, token)
    text = text.strip()
    if not text or len(text) > MAX_COMMENT or "\x00" in text:
        raise ValidationFailed.on(("body", "comment"), f"1 to {MAX_COMMENT} characters")
    if message.data.get("answer") is None:
        raise Conflict("rate first, then comment")
    if message.data.get("comment") is not None:
        return message
    props = {
        "survey": survey["code"],
        "comment": text,
        "message_id": str(message.id),
        "score": message.data["answer"]["score"],
    }
    _event(session, ingest, message, "survey_commented", props, now)
    message.data = {**message.data, "comment": {"text": text, "at": now.isoformat()}}
    return message
