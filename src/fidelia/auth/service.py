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

from sqlalchemy import select
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


def create(
    session: Session, *, programme: Programme, name: str, scope: Scope
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the secret, which is never retrievable again."""
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        programme_id=programme.id,
        name=name,
        scope=scope.value,
        prefix=prefix,
        digest=_digest(secret),
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
    return Principal(programme=programme, key_id=api_key.id, scope=Scope(api_key.scope))
