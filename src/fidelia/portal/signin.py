"""Passwordless sign-in for members: one-time codes and member sessions.

A member asks for a code with their email or phone; the answer is the same whether or not the
identity belongs to a member (no enumeration), and every request is a row, so throttling per
identity and per address holds across processes. A code is six digits, valid ten minutes, used
once, stored as a salted SHA-256 and burnt after five wrong tries. A right code opens a member
session: a random token in the member's cookie, its digest in ``portal_sessions`` (never the
back-office's table), with its own CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fidelia.errors import FideliaError, ValidationFailed
from fidelia.members import identities
from fidelia.models import Member, MemberIdentity, Programme
from fidelia.models.portal import PortalAttempt, PortalCode, PortalSession

CODE_VALID = timedelta(minutes=10)
CODE_TRIES = 5
WINDOW = timedelta(minutes=15)
SENDS_PER_IDENTITY = 3
SENDS_PER_IP = 20
FAILS_PER_IDENTITY = 10
FAILS_PER_IP = 30
SESSION_DAYS = 30
IDLE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=5)
SIGNED_IN = frozenset({"prospect", "active", "suspended"})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Address:
    """Where a code goes: ``email`` or ``phone`` and the normalised value."""

    kind: str
    value: str

    def digest(self, programme: Programme) -> str:
        return _sha(f"{programme.id}:{self.kind}:{self.value}")


def address_of(programme: Programme, text: str) -> Address:
    """An email (has an @) or a phone number, normalised as at enrolment; 422 naming
    ``identity`` otherwise."""
    text = text.strip()[:320]
    if not text:
        raise ValidationFailed.on("identity", "give your email or your phone number")
    try:
        if "@" in text:
            return Address("email", identities.normalise_email(text, loc=("identity",)))
        return Address(
            "phone", identities.normalise_phone(text, region=programme.country, loc=("identity",))
        )
    except FideliaError as exc:
        raise ValidationFailed.on("identity", "not an email or phone number we can use") from exc


def _count(
    session: Session,
    programme: Programme,
    kind: str,
    *,
    identity: str = "",
    ip: str = "",
    since: datetime,
) -> int:
    query = select(func.count()).where(PortalAttempt.kind == kind, PortalAttempt.at >= since)
    if identity:
        query = query.where(
            PortalAttempt.programme_id == programme.id, PortalAttempt.identity == identity
        )
    else:
        query = query.where(PortalAttempt.ip == ip)
    return session.scalar(query) or 0


def _throttled(
    session: Session, programme: Programme, kind: str, identity: str, ip: str, now: datetime
) -> bool:
    per_identity, per_ip = (
        (SENDS_PER_IDENTITY, SENDS_PER_IP) if kind == "send" else (FAILS_PER_IDENTITY, FAILS_PER_IP)
    )
    since = now - WINDOW
    if _count(session, programme, kind, identity=identity, since=since) >= per_identity:
        return True
    return _count(session, programme, kind, ip=ip, since=since) >= per_ip


def member_of(session: Session, programme: Programme, address: Address) -> Member | None:
    """The member this address signs in (None: nobody, or a closed or merged member)."""
    member = session.scalar(
        select(Member)
        .join(MemberIdentity, MemberIdentity.member_id == Member.id)
        .where(
            MemberIdentity.programme_id == programme.id,
            MemberIdentity.kind == address.kind,
            MemberIdentity.namespace == "",
            MemberIdentity.value == address.value,
        )
    )
    return member if member is not None and member.status in SIGNED_IN else None


@dataclass(frozen=True)
class CodeRequest:
    """What a request for a code gave: a code to send to ``member`` (None: nobody to send
    to, which the page does not reveal), or ``throttled``."""

    address: Address
    member: Member | None = None
    code: str | None = None
    throttled: bool = False


def request_code(
    session: Session, *, programme: Programme, address: Address, ip: str, now: datetime
) -> CodeRequest:
    """Record the request; unless throttled, a fresh code for the member the address names
    (earlier unused codes of that address stop working)."""
    identity = address.digest(programme)
    if _throttled(session, programme, "send", identity, ip, now):
        return CodeRequest(address, throttled=True)
    session.add(
        PortalAttempt(programme_id=programme.id, kind="send", identity=identity, ip=ip[:64], at=now)
    )
    member = member_of(session, programme, address)
    if member is None:
        session.flush()
        return CodeRequest(address)
    session.execute(
        update(PortalCode)
        .where(
            PortalCode.programme_id == programme.id,
            PortalCode.identity == identity,
            PortalCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    row_id = uuid.uuid4()
    session.add(
        PortalCode(
            id=row_id,
            programme_id=programme.id,
            member_id=member.id,
            identity=identity,
            digest=_sha(f"{row_id}:{code}"),
            attempts=0,
            expires_at=now + CODE_VALID,
        )
    )
    session.flush()
    return CodeRequest(address, member, code)


@dataclass(frozen=True)
class Verified:
    """A right code's member and session token, or why not: ``wrong`` (tries left),
    ``expired`` (no live code: unknown, used, expired or burnt) or ``throttled``."""

    member_id: uuid.UUID | None = None
    token: str | None = None
    error: str | None = None


def verify_code(
    session: Session,
    *,
    programme: Programme,
    address: Address,
    code: str,
    ip: str,
    now: datetime,
) -> Verified:
    """Check ``code`` for ``address``; a right one is spent and opens a session. Never raises
    for a wrong code: the failure must be committed to count."""
    identity = address.digest(programme)
    if _throttled(session, programme, "fail", identity, ip, now):
        return Verified(error="throttled")
    row = session.scalar(
        select(PortalCode)
        .where(
            PortalCode.programme_id == programme.id,
            PortalCode.identity == identity,
            PortalCode.used_at.is_(None),
            PortalCode.expires_at > now,
        )
        .order_by(PortalCode.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    given = "".join(ch for ch in code if ch.isdigit())[:6]
    if row is not None and hmac.compare_digest(row.digest, _sha(f"{row.id}:{given}")):
        row.used_at = now
        token = open_session(session, programme=programme, member_id=row.member_id, ip=ip, now=now)
        return Verified(member_id=row.member_id, token=token)
    session.add(
        PortalAttempt(programme_id=programme.id, kind="fail", identity=identity, ip=ip[:64], at=now)
    )
    error = "expired"
    if row is not None:
        row.attempts += 1
        if row.attempts >= CODE_TRIES:
            row.used_at = now  # burnt: ask for a new code
        else:
            error = "wrong"
    session.flush()
    return Verified(error=error)


def open_session(
    session: Session, *, programme: Programme, member_id: uuid.UUID, ip: str, now: datetime
) -> str:
    """A new member session; returns the token for the cookie (only its digest is kept)."""
    token = secrets.token_urlsafe(32)
    session.add(
        PortalSession(
            programme_id=programme.id,
            member_id=member_id,
            digest=_sha(token),
            csrf_token=secrets.token_urlsafe(32),
            ip=ip[:64],
            last_seen_at=now,
            expires_at=now + timedelta(days=SESSION_DAYS),
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class Current:
    """A live member session: whose, its CSRF token, and whether to refresh its idle time."""

    session_id: uuid.UUID
    member: Member
    csrf_token: str
    stale: bool


def resolve(
    session: Session, *, programme: Programme, token: str | None, now: datetime
) -> Current | None:
    """The live session of ``token`` in ``programme`` (None: unknown, ended, expired, idle,
    another programme's, or a member since closed or merged)."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(PortalSession, Member)
        .join(Member, Member.id == PortalSession.member_id)
        .where(PortalSession.digest == _sha(token), PortalSession.programme_id == programme.id)
    ).first()
    if row is None:
        return None
    live, member = row
    if live.ended_at is not None or live.expires_at <= now or live.last_seen_at + IDLE <= now:
        return None
    if member.status not in SIGNED_IN:
        return None
    return Current(live.id, member, live.csrf_token, now - live.last_seen_at >= TOUCH_EVERY)


def touch(session: Session, *, session_id: uuid.UUID, now: datetime) -> None:
    session.execute(
        update(PortalSession).where(PortalSession.id == session_id).values(last_seen_at=now)
    )


def sign_out(session: Session, *, token: str | None, now: datetime) -> None:
    if token:
        session.execute(
            update(PortalSession)
            .where(PortalSession.digest == _sha(token[:200]), PortalSession.ended_at.is_(None))
            .values(ended_at=now)
        )


def end_all(session: Session, *, member_id: uuid.UUID, now: datetime) -> None:
    """End every session of a member (account closed)."""
    session.execute(
        update(PortalSession)
        .where(PortalSession.member_id == member_id, PortalSession.ended_at.is_(None))
        .values(ended_at=now)
    )
