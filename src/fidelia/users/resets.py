"""Password reset by email: a single-use token valid for an hour, sent through the configured
SMTP server. Asking for a reset says nothing about whether the address has an account."""

from __future__ import annotations

import secrets
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fidelia.config import get_settings
from fidelia.errors import ValidationFailed
from fidelia.models.users import BackofficeUser, PasswordReset
from fidelia.users import service
from fidelia.users.sessions import digest, end_all

VALID_FOR = timedelta(hours=1)


def request_reset(session: Session, *, email: str, now: datetime) -> str | None:
    """A new reset token for the user with this email (None if there is none or it is
    disabled); earlier unused tokens of that user stop working."""
    user = service.find_by_email(session, email=email)
    if user is None or user.disabled_at is not None:
        return None
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, digest=digest(token), expires_at=now + VALID_FOR))
    session.flush()
    return token


def token_user(session: Session, *, token: str, now: datetime) -> BackofficeUser | None:
    """The user a live token resets, or None (unknown, used or expired)."""
    row = session.execute(
        select(PasswordReset, BackofficeUser)
        .join(BackofficeUser, BackofficeUser.id == PasswordReset.user_id)
        .where(PasswordReset.digest == digest(token[:200]))
    ).first()
    if row is None or row[0].used_at is not None or row[0].expires_at <= now:
        return None
    return row[1]


def complete_reset(session: Session, *, token: str, password: str, now: datetime) -> BackofficeUser:
    """Set the new password, spend the token and end the user's sessions."""
    user = token_user(session, token=token, now=now)
    if user is None:
        raise ValidationFailed.on("token", "this reset link is unknown, used or expired")
    service.set_password(session, user=user, password=password)
    session.execute(
        update(PasswordReset).where(PasswordReset.digest == digest(token)).values(used_at=now)
    )
    end_all(session, user_id=user.id, now=now)
    return user


def send_reset_email(*, to: str, link: str, subject: str, body: str) -> None:
    """Send the reset link through the configured SMTP server (raises OSError on failure)."""
    settings = get_settings()
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"{body}\n\n{link}\n")
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)
