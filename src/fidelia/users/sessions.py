"""Signing in and out: throttled attempts, sessions with an absolute and an idle expiry.

The browser holds a random token; the database keeps its SHA-256 with the session's CSRF token
(a synchroniser token: every form carries it, every write checks it). Failed attempts are rows,
so throttling holds across processes: too many failures for one email or from one address in
the window, and sign-in is refused until the oldest of them leaves the window.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from fidelia.config import get_settings
from fidelia.models.users import BackofficeSession, BackofficeUser, LoginAttempt
from fidelia.users import passwords
from fidelia.users.service import find_by_email

# Refresh last_seen_at at most this often: a read of a page should rarely be a write.
TOUCH_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: a user and a session token, or why not (``error``:
    ``invalid`` or ``throttled``)."""

    user: BackofficeUser | None = None
    token: str | None = None
    error: str | None = None


def _failures(
    session: Session, column: InstrumentedAttribute[str], value: str, since: datetime
) -> int:
    query = select(func.count()).where(
        column == value,
        LoginAttempt.at >= since,
        LoginAttempt.succeeded.is_(False),
    )
    return session.scalar(query) or 0


def throttled(session: Session, *, email: str, ip: str, now: datetime) -> bool:
    """Whether sign-ins for this email or from this address are refused for now."""
    settings = get_settings()
    since = now - timedelta(minutes=settings.login_window_minutes)
    address = email.strip().lower()
    if _failures(session, LoginAttempt.email, address, since) >= (
        settings.login_max_failures_per_account
    ):
        return True
    return _failures(session, LoginAttempt.ip, ip, since) >= settings.login_max_failures_per_ip


def sign_in(session: Session, *, email: str, password: str, ip: str, now: datetime) -> SignIn:
    """Check the password (argon2) unless throttled; record the attempt; open a session.

    Never raises for a wrong password: the attempt must be committed to count."""
    address = email.strip().lower()[:320]
    if throttled(session, email=address, ip=ip, now=now):
        return SignIn(error="throttled")
    user = find_by_email(session, email=address) if address else None
    ok = passwords.verify(user.password_hash if user else None, password)
    ok = ok and user is not None and user.disabled_at is None
    session.add(LoginAttempt(email=address, ip=ip[:64], succeeded=ok, at=now))
    if not ok or user is None:
        session.flush()
        return SignIn(error="invalid")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    token = open_session(session, user=user, ip=ip, now=now)
    return SignIn(user=user, token=token)


def open_session(session: Session, *, user: BackofficeUser, ip: str, now: datetime) -> str:
    """A new session for ``user``; returns the token for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    hours = get_settings().backoffice_session_hours
    session.add(
        BackofficeSession(
            user_id=user.id,
            digest=digest(token),
            csrf_token=secrets.token_urlsafe(32),
            ip=ip[:64],
            last_seen_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class Current:
    """A live session and its user; ``stale``: last_seen_at should be refreshed."""

    session_id: uuid.UUID
    user: BackofficeUser
    csrf_token: str
    stale: bool


def resolve(session: Session, *, token: str | None, now: datetime) -> Current | None:
    """The live session this token opens, or None (unknown, ended, expired, idle, disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(BackofficeSession, BackofficeUser)
        .join(BackofficeUser, BackofficeUser.id == BackofficeSession.user_id)
        .where(BackofficeSession.digest == digest(token))
    ).first()
    if row is None:
        return None
    live, user = row
    idle = timedelta(minutes=get_settings().backoffice_idle_minutes)
    if live.ended_at is not None or live.expires_at <= now or live.last_seen_at + idle <= now:
        return None
    if user.disabled_at is not None:
        return None
    stale = now - live.last_seen_at >= TOUCH_EVERY
    return Current(session_id=live.id, user=user, csrf_token=live.csrf_token, stale=stale)


def touch(session: Session, *, session_id: uuid.UUID, now: datetime) -> None:
    """Record activity on a session (pushes its idle expiry back)."""
    session.execute(
        update(BackofficeSession).where(BackofficeSession.id == session_id).values(last_seen_at=now)
    )


def sign_out(session: Session, *, token: str | None, now: datetime) -> None:
    """End the session this token opens (nothing if none)."""
    if not token:
        return
    session.execute(
        update(BackofficeSession)
        .where(BackofficeSession.digest == digest(token), BackofficeSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_all(session: Session, *, user_id: uuid.UUID, now: datetime) -> None:
    """End every session of the user (after a password change)."""
    session.execute(
        update(BackofficeSession)
        .where(BackofficeSession.user_id == user_id, BackofficeSession.ended_at.is_(None))
        .values(ended_at=now)
    )
