"""Signed links of a message: unsubscribe, open pixel, click redirect, survey, SMS reports.

A token is ``<message id>.<purpose>.<HMAC-SHA256>`` (base64url), signed with the programme's
messaging key (``messaging_keys``, created at its first message). The message row says which
programme's key checks it, so a token names nothing an attacker could choose: a click token
carries the index of a link of the rendered message, and the redirect goes only there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.errors import NotFound
from fidelia.messaging import log
from fidelia.models.messaging import Message, MessagingKey

_KEYS: dict[uuid.UUID, bytes] = {}
_LOCK = threading.Lock()
# Statuses after which an open or a click is worth recording.
_SENT = frozenset({"sent", "delivered", "opened", "clicked"})
RANK = {"sent": 1, "delivered": 2, "opened": 3, "clicked": 4}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_for(session: Session, programme_id: uuid.UUID, *, create: bool = True) -> bytes | None:
    """The programme's signing key (created once, on first use, when ``create``)."""
    with _LOCK:
        if programme_id in _KEYS:
            return _KEYS[programme_id]
    row = session.get(MessagingKey, programme_id)
    if row is None:
        if not create:
            return None
        try:
            with session.begin_nested():
                row = MessagingKey(programme_id=programme_id, secret=secrets.token_hex(32))
                session.add(row)
        except IntegrityError:  # another transaction created it first
            row = session.scalar(
                select(MessagingKey).where(MessagingKey.programme_id == programme_id)
            )
            assert row is not None
    key = bytes.fromhex(row.secret)
    with _LOCK:
        _KEYS[programme_id] = key
    return key


def sign(key: bytes, message_id: uuid.UUID, purpose: str) -> str:
    body = f"{_b64(message_id.bytes)}.{purpose}"
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
    return f"{body}.{_b64(mac)}"


def open_token(session: Session, token: str, purpose: str) -> tuple[Message, str]:
    """The message a valid token of ``purpose`` (its prefix) names, and the rest of the purpose
    (a link index). Any invalid token is a 404: nothing tells a forger why."""
    try:
        id_part, purpose_part, mac_part = token.split(".")
        message_id = uuid.UUID(bytes=_unb64(id_part))
        mac = _unb64(mac_part)
    except ValueError as exc:
        raise NotFound("no such link") from exc
    if not purpose_part.startswith(purpose):
        raise NotFound("no such link")
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound("no such link")
    key = key_for(session, message.programme_id, create=False)
    body = f"{id_part}.{purpose_part}"
    if key is None or not hmac.compare_digest(
        mac, hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
    ):
        raise NotFound("no such link")
    return message, purpose_part[len(purpose) :]


def advance(session: Session, message: Message, status: str, at: datetime) -> None:
    """Record a delivery step (delivered, opened, clicked) once; the status only moves up."""
    stamp = f"{status}_at"
    if getattr(message, stamp) is None:
        setattr(message, stamp, at)
        log.add(session, message, status, at)
    if status == "clicked" and message.opened_at is None:
        message.opened_at = at  # a click proves the open the pixel may have missed
    if message.status in _SENT and RANK[status] > RANK.get(message.status, 0):
        message.status = status


def record_open(session: Session, token: str, at: datetime) -> None:
    message, _ = open_token(session, token, "o")
    advance(session, message, "opened", at)


def record_click(session: Session, token: str, at: datetime) -> str:
    """Record the click and answer the URL to redirect to (a link of the message only)."""
    message, rest = open_token(session, token, "c")
    if not rest.isdigit() or int(rest) >= len(message.links):
        raise NotFound("no such link")
    advance(session, message, "clicked", at)
    return str(message.links[int(rest)])
