from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from fidelia.auth import service
from fidelia.auth.dependencies import Admin, DbSession
from fidelia.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from fidelia.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[ApiKeyOut])
def list_keys(principal: Admin, session: DbSession) -> list[ApiKeyOut]:
    keys = service.list_keys(session, programme=principal.programme)
    return [ApiKeyOut.model_validate(k) for k in keys]


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_key(body: ApiKeyCreate, principal: Admin, session: DbSession) -> ApiKeyCreated:
    key, secret = service.create(
        session, programme=principal.programme, name=body.name, scope=body.scope
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke a key")
def revoke_key(key_id: uuid.UUID, principal: Admin, session: DbSession) -> ApiKeyOut:
    key = service.revoke(session, programme=principal.programme, key_id=key_id)
    return ApiKeyOut.model_validate(key)
