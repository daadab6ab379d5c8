"""API keys: ``fid_<prefix>_<secret>``; the database keeps only the SHA-256 of the whole key.

A key carries 256 bits of randomness, so a fast digest is as safe as a slow password hash and
lets authentication be one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from fidelia.auth.schemas import Scope
from fidelia.errors import Conflict, NotFound, Unauthorized
from fidelia.kit.clock import utcnow
from fidelia.models import ApiKey, Programme

KEY_PREFIX = "fid"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def digest_of(key: str) -> str:
    """What the database keeps of a key (SHA-256 of the whole key)."""
    return _digest(key)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one programme with one scope."""

    programme: Programme
    key_id: uuid.UUID
    scope: Scope
    expires_at: datetime | None = None

    def check_not_expired(self, now: datetime | None = None) -> None:
        """401 once the key's expiry (a rotation's grace period, or a set date) has passed."""
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            raise Unauthorized(f"this API key expired at {self.expires_at.isoformat()}")


def create(
    session: Session,
    *,
    programme: Programme,
    name: str,
    scope: Scope,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key (refused from ``expires_at`` on, if given); returns the row and the
    secret, which is never retrievable again."""
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        programme_id=programme.id,
        name=name,
        scope=scope.value,
        prefix=prefix,
        digest=_digest(secret),
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    return key, secret


def list_keys(session: Session, *, programme: Programme) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.programme_id == programme.id).order_by(ApiKey.created_at)
    return list(session.scalars(query))


def revoke(session: Session, *, programme: Programme, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or key.programme_id != programme.id:
        raise NotFound(f"API key {key_id} does not exist")
    if key.revoked_at is not None:
        raise Conflict(f"API key {key_id} is already revoked")
    key.revoked_at = utcnow()
    session.flush()
    return key


def rotate(
    session: Session, *, programme: Programme, key_id: uuid.UUID, grace: timedelta
) -> tuple[ApiKey, str]:
    """A new key with the old one's name and scope; the old one keeps working for ``grace``
    (its expiry is brought forward to then, never pushed back) and names its replacement.
    404: no such key; 409: a revoked, expired or already rotated key."""
    old = session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.programme_id == programme.id)
        .with_for_update()
    )  # fmt: skip
    if old is None:
        raise NotFound(f"API key {key_id} does not exist")
    now = utcnow()
    if old.revoked_at is not None:
        raise Conflict(f"API key {key_id} is revoked: create a new key instead")
    if old.expires_at is not None and old.expires_at <= now:
        raise Conflict(f"API key {key_id} has expired: create a new key instead")
    if old.replaced_by_id is not None:
        raise Conflict(f"API key {key_id} was already rotated to {old.replaced_by_id}")
    new, secret = create(session, programme=programme, name=old.name, scope=Scope(old.scope))
    end = now + grace
    old.expires_at = end if old.expires_at is None else min(old.expires_at, end)
    old.replaced_by_id = new.id
    session.flush()
    return new, secret


def touch(session: Session, *, key_id: uuid.UUID, at: datetime, every: timedelta) -> None:
    """Set the key's ``last_used_at`` unless it was set less than ``every`` ago (one UPDATE
    that writes nothing when it is fresh)."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < at - every),
        )
        .values(last_used_at=at)
    )


def authenticate(session: Session, *, key: str | None) -> Principal:
    """Resolve a presented key to its programme and scope, or raise 401."""
    if not key:
        raise Unauthorized("missing API key: send it as 'Authorization: Bearer <key>'")
    row = session.execute(
        select(ApiKey, Programme)
        .join(Programme, Programme.id == ApiKey.programme_id)
        .where(ApiKey.digest == _digest(key))
    ).first()
    if row is None or not hmac.compare_digest(row[0].digest, _digest(key)):
        raise Unauthorized("unknown API key")
    api_key, programme = row
    if api_key.revoked_at is not None:
        raise Unauthorized("this API key has been revoked")
    principal = Principal(
        programme=programme,
        key_id=api_key.id,
        scope=Scope(api_key.scope),
        expires_at=api_key.expires_at,
    )
    principal.check_not_expired()
    return principal
