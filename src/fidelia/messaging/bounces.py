"""Email bounces: VERP return paths, RFC 3464 delivery status notifications, their outcome.

With ``channels.email.bounce_address`` set (``bounces@shop.example.org``), each message leaves
with the envelope sender ``bounces+<token>@shop.example.org``, the token being the message id
signed with the programme's messaging key (purpose ``b``). The receiving server returns its
DSN (``multipart/report; report-type=delivery-status``) to that address, so the DSN names the
message it is about and nobody can forge one for another message. A DSN with no token (a
relay that rewrote the return path) is matched by the ``X-Fidelia-Message`` header of the
returned headers, only for the programme that handed it in (an authenticated door).

Per recipient block: ``Action: failed`` with a ``5.x.x`` status is a hard bounce: the message
becomes ``bounced`` with the status and diagnostic as reason, the address is recorded in
``bounced_addresses`` (queue-time and send-time reachability skip it) and a
``message.bounced`` notice is written (webhooks deliver it). ``failed`` with ``4.x.x`` is a
soft bounce: the message is queued again with the programme's retry backoff, until
``retry.max_attempts``; ``delayed`` is only logged.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import Message as MimeMessage
from email.parser import HeaderParser

from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.messaging import log, tracking
from fidelia.messaging.schemas import MessagingSection
from fidelia.messaging.service import DELIVER_JOB
from fidelia.models import Programme
from fidelia.models.messaging import BouncedAddress, Message
from fidelia.notices import service as notices

_TOKEN = re.compile(r"\+([A-Za-z0-9_-]+\.b\.[A-Za-z0-9_-]+)@")
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
# Headers of a DSN that may carry the address it was returned to.
_TO_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


def return_path(section: MessagingSection, key: bytes, message: Message) -> str | None:
    """The VERP envelope sender of an email ``message``, or None (bounces not configured)."""
    email = section.channels.email
    if message.channel != "email" or email is None or email.bounce_address is None:
        return None
    local, domain = email.bounce_address.split("@")
    return f"{local}+{tracking.sign(key, message.id, 'b')}@{domain}"


@dataclass(frozen=True)
class Bounce:
    """One recipient block of a DSN."""

    token: str | None  # the signed VERP token the DSN was returned to
    message_ref: uuid.UUID | None  # X-Fidelia-Message of the returned headers (unsigned)
    recipient: str | None
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # 5.1.1
    diagnostic: str | None

    @property
    def hard(self) -> bool:
        return self.action == "failed" and self.status.startswith("5")

    @property
    def soft(self) -> bool:
        return self.action == "failed" and self.status.startswith("4")

    @property
    def reason(self) -> str:
        return f"{self.status} {self.diagnostic or ''}".strip()[:1000]


def _value(block: MimeMessage, name: str) -> str | None:
    raw = block.get(name)
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    # "rfc822; user@example.org", "smtp; 550 5.1.1 unknown": drop the type
    return text.split(";", 1)[1].strip() if ";" in text else text


def _token(msg: MimeMessage) -> str | None:
    for name in _TO_HEADERS:
        for value in msg.get_all(name) or []:
            found = _TOKEN.search(str(value))
            if found:
                return found.group(1)
    return None


def _returned_ref(part: MimeMessage) -> uuid.UUID | None:
    if part.get_content_type() == "text/rfc822-headers":
        payload = part.get_payload(decode=True)
        text = payload.decode(errors="replace") if isinstance(payload, bytes) else str(payload)
        headers: MimeMessage = HeaderParser().parsestr(text)
    else:  # message/rfc822: the payload is the returned message
        inner = part.get_payload()
        if not isinstance(inner, list) or not inner:
            return None
        if not isinstance(inner[0], MimeMessage):
            return None
        headers = inner[0]
    ref = headers.get("X-Fidelia-Message")
    try:
        return uuid.UUID(str(ref).strip()) if ref else None
    except ValueError:
        return None


def parse(raw: bytes) -> list[Bounce]:
    """The recipient blocks of a delivery status notification (RFC 3464). A message that is
    not one is a 422 naming why (``dsn``)."""
    msg = message_from_bytes(raw, policy=policy.compat32)
    if msg.get_content_type() != "multipart/report":
        raise ValidationFailed.on(
            "dsn",
            "not a delivery status notification: expected multipart/report, "
            f"got {msg.get_content_type()}",
        )
    blocks: list[MimeMessage] = []
    ref = None
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                blocks = [b for b in payload[1:] if isinstance(b, MimeMessage)]  # 1st: per message
        elif kind in ("text/rfc822-headers", "message/rfc822") and ref is None:
            ref = _returned_ref(part)
    token = _token(msg)
    out = []
    for block in blocks:
        action = (_value(block, "Action") or "").lower()
        status = (_value(block, "Status") or "").split(" ")[0]
        if not action or not _STATUS.match(status):
            continue
        out.append(
            Bounce(
                token=token,
                message_ref=ref,
                recipient=_value(block, "Final-Recipient") or _value(block, "Original-Recipient"),
                action=action,
                status=status,
                diagnostic=_value(block, "Diagnostic-Code"),
            )
        )
    if not out:
        raise ValidationFailed.on(
            "dsn", "no recipient block with an Action and a Status (RFC 3464)"
        )
    return out


def _message_for(session: Session, programme: Programme, bounce: Bounce) -> Message | None:
    message: Message | None = None
    if bounce.token is not None:
        try:
            message, _ = tracking.open_token(session, bounce.token, "b")
        except NotFound:
            message = None
    if message is None and bounce.message_ref is not None:
        message = session.get(Message, bounce.message_ref)
    if message is None or message.programme_id != programme.id or message.channel != "email":
        return None
    return session.get(Message, message.id, with_for_update=True, populate_existing=True)


def hard(
    session: Session,
    message: Message,
    reason: str,
    now: datetime,
    *,
    status: str | None = None,
    diagnostic: str | None = None,
) -> None:
    """A hard bounce of an email ``message`` (a DSN, or a 5xx answer to RCPT): the message is
    ``bounced``, its address unreachable, a ``message.bounced`` notice written (once)."""
    if message.status != "bounced":
        message.status, message.reason = "bounced", reason
        log.add(session, message, "bounced", now, reason)
        payload = {
            "message_id": message.id,
            "channel": "email",
            "address": message.recipient,
            "status": status,
            "diagnostic": diagnostic,
        }
        notices.record_many(
            session,
            message.programme_id,
            [notices.Notice("message.bounced", message.member_id, now, payload)],
        )
    address = message.recipient or ""
    if address and session.get(BouncedAddress, (message.programme_id, address)) is None:
        session.add(
            BouncedAddress(
                programme_id=message.programme_id,
                address=address,
                message_id=message.id,
                reason=reason,
                bounced_at=now,
            )
        )
        session.flush()


def record(
    session: Session,
    *,
    programme: Programme,
    section: MessagingSection | None,
    bounce: Bounce,
    now: datetime,
) -> str:
    """Apply one bounce; answers ``hard``, ``soft``, ``logged`` or ``unmatched``."""
    message = _message_for(session, programme, bounce)
    if message is None:
        return "unmatched"
    if bounce.hard:
        hard(
            session, message, bounce.reason, now, status=bounce.status, diagnostic=bounce.diagnostic
        )
        return "hard"
    if bounce.soft and message.status in ("sent", "delivered"):
        retry = section.retry if section else None
        if retry is not None and message.attempts < retry.max_attempts:
            due = now + jobs.backoff(message.attempts, retry.backoff_seconds)
            message.status, message.due_at, message.reason = "queued", due, bounce.reason
            log.add(session, message, "retry", now, f"soft bounce: {bounce.reason}")
            jobs.enqueue(
                session,
                kind=DELIVER_JOB,
                payload={"message_id": str(message.id)},
                due_at=due,
                programme_id=message.programme_id,
            )
        else:
            message.status, message.reason = "failed", f"soft bounce: {bounce.reason}"
            log.add(session, message, "failed", now, message.reason)
        return "soft"
    log.add(session, message, "report", now, f"dsn {bounce.action}: {bounce.reason}")
    return "logged"


def record_raw(
    session: Session,
    *,
    programme: Programme,
    section: MessagingSection | None,
    raw: bytes,
    now: datetime,
) -> dict[str, int]:
    """Parse one DSN and apply each of its recipient blocks; the count per outcome."""
    counts = {"hard": 0, "soft": 0, "logged": 0, "unmatched": 0}
    for bounce in parse(raw):
        counts[record(session, programme=programme, section=section, bounce=bounce, now=now)] += 1
    return counts
