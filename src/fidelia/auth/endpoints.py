from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, status

from fidelia.auth import service
from fidelia.auth.dependencies import Admin, DbSession
from fidelia.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyRotate
from fidelia.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[ApiKeyOut], summary="The programme's API keys")
def list_keys(principal: Admin, session: DbSession) -> list[ApiKeyOut]:
    """The programme's API keys, revoked ones included, with their scope and the prefix that
    identifies them in logs. Secrets are never shown again after creation.

    Scope: `admin`.
    """
    keys = service.list_keys(session, programme=principal.programme)
    return [ApiKeyOut.model_validate(k) for k in keys]


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a key (its secret is shown once)",
)
def create_key(body: ApiKeyCreate, principal: Admin, session: DbSession) -> ApiKeyCreated:
    """Create an API key of a scope: `read` (look), `integration` (tills, web shops, apps: enrol,
    send events, redeem, use vouchers) or `admin` (configure, correct, manage keys). The secret
    (`key`) is in this answer only; only its digest is stored, so keep it now. Each call creates a
    new key.

    422: an empty or too long name, an unknown scope.

    Scope: `admin`.
    """
    key, secret = service.create(
        session,
        programme=principal.programme,
        name=body.name,
        scope=body.scope,
        expires_at=body.expires_at,
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)


@router.post(
    "/{key_id}/rotate",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Rotate a key: a new one, the old one working for a grace period",
)
def rotate_key(
    key_id: uuid.UUID, body: ApiKeyRotate, principal: Admin, session: DbSession
) -> ApiKeyCreated:
    """Create the key that replaces this one (same name and scope; its secret is in this answer
    only). The old key keeps working for `grace_hours` (default 24, at most 720; 0 stops it
    now), then is refused with 401; it names its replacement in `replaced_by_id`.

    404: no such key. 409: the key is revoked, expired or already rotated.

    Scope: `admin`.
    """
    grace = timedelta(hours=body.grace_hours)
    key, secret = service.rotate(session, programme=principal.programme, key_id=key_id, grace=grace)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke a key")
def revoke_key(key_id: uuid.UUID, principal: Admin, session: DbSession) -> ApiKeyOut:
    """Revoke a key at once: calls with it are then refused with 401. A key cannot be revoked twice,
    nor brought back: create a new one.

    404: no such key in the programme. 409: the key is already revoked.

    Scope: `admin`.
    """
    key = service.revoke(session, programme=principal.programme, key_id=key_id)
    return ApiKeyOut.model_validate(key)
