"""Back-office users and their roles per programme.

Roles, from most to least: ``owner`` (everything, API keys and users included), ``marketer``
(programme and members), ``support`` (members: look up and correct), ``analyst`` (reads only).
A user without a role in a programme sees nothing of it.
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.models import Programme
from fidelia.models.users import BackofficeRole, BackofficeUser
from fidelia.users import passwords

LOCALES = ("fr", "en")


class Role(enum.StrEnum):
    owner = "owner"
    marketer = "marketer"
    support = "support"
    analyst = "analyst"

    @property
    def can_write(self) -> bool:
        """Whether this role may change members (adjust points and the like)."""
        return self is not Role.analyst

    @property
    def can_publish(self) -> bool:
        """Whether this role may publish a new version of the programme document."""
        return self in (Role.owner, Role.marketer)

    @property
    def can_manage(self) -> bool:
        """Whether this role may manage API keys and users."""
        return self is Role.owner


def normalise_email(email: str) -> str:
    """Lower-cased and trimmed; refused when it is not an address."""
    value = email.strip().lower()
    if "@" not in value or len(value) > 320 or value.startswith("@") or value.endswith("@"):
        raise ValidationFailed.on("email", "not an email address")
    return value


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    name: str = "",
    locale: str | None = None,
) -> BackofficeUser:
    """A new user (409 if the email is taken); the password is stored as an argon2 hash."""
    address = normalise_email(email)
    passwords.check_strength(password)
    if locale is not None and locale not in LOCALES:
        raise ValidationFailed.on("locale", f"one of {', '.join(LOCALES)}")
    if find_by_email(session, email=address) is not None:
        raise Conflict(f"a back-office user with email {address} exists")
    user = BackofficeUser(
        email=address, name=name, password_hash=passwords.hash_password(password), locale=locale
    )
    session.add(user)
    session.flush()
    return user


def find_by_email(session: Session, *, email: str) -> BackofficeUser | None:
    """The user with this email (any case), or None."""
    address = email.strip().lower()
    return session.scalar(select(BackofficeUser).where(BackofficeUser.email == address))


def get_user(session: Session, *, user_id: uuid.UUID) -> BackofficeUser:
    user = session.get(BackofficeUser, user_id)
    if user is None:
        raise NotFound(f"back-office user {user_id} does not exist")
    return user


def grant(
    session: Session, *, user: BackofficeUser, programme: Programme, role: Role
) -> BackofficeRole:
    """Give ``user`` ``role`` in ``programme`` (replacing the role they had there)."""
    row = session.scalar(
        select(BackofficeRole).where(
            BackofficeRole.user_id == user.id, BackofficeRole.programme_id == programme.id
        )
    )
    if row is None:
        row = BackofficeRole(user_id=user.id, programme_id=programme.id, role=role.value)
        session.add(row)
    else:
        row.role = role.value
    session.flush()
    return row


def role_in(session: Session, *, user_id: uuid.UUID, programme_id: uuid.UUID) -> Role | None:
    """The user's role in the programme, or None when they have none there."""
    role = session.scalar(
        select(BackofficeRole.role).where(
            BackofficeRole.user_id == user_id, BackofficeRole.programme_id == programme_id
        )
    )
    return Role(role) if role else None


def programmes_of(session: Session, *, user_id: uuid.UUID) -> list[tuple[Programme, Role]]:
    """The programmes the user has a role in, by name."""
    rows = session.execute(
        select(Programme, BackofficeRole.role)
        .join(BackofficeRole, BackofficeRole.programme_id == Programme.id)
        .where(BackofficeRole.user_id == user_id)
        .order_by(Programme.name, Programme.slug)
    )
    return [(programme, Role(role)) for programme, role in rows]


def set_locale(session: Session, *, user: BackofficeUser, locale: str | None) -> None:
    """The language the user reads the back-office in (None: the programme's)."""
    if locale is not None and locale not in LOCALES:
        raise ValidationFailed.on("locale", f"one of {', '.join(LOCALES)}")
    user.locale = locale
    session.flush()


def set_password(session: Session, *, user: BackofficeUser, password: str) -> None:
    """Replace the user's password (checked for length, stored hashed)."""
    passwords.check_strength(password)
    user.password_hash = passwords.hash_password(password)
    session.flush()
