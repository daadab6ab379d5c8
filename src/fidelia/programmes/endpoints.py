from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.examples import examples
from fidelia.programmes import documents, service
from fidelia.programmes import examples as ex
from fidelia.programmes.schemas import ProgrammeOut, ProgrammeUpdate

router = APIRouter(tags=["programme"], responses=ERROR_RESPONSES)


@router.get("/programme", response_model=ProgrammeOut, summary="The programme of the calling key")
def read_programme(principal: Reader) -> ProgrammeOut:
    return ProgrammeOut.model_validate(principal.programme)


@router.patch("/programme", response_model=ProgrammeOut, summary="Change name, locale or policies")
def update_programme(body: ProgrammeUpdate, principal: Admin, session: DbSession) -> ProgrammeOut:
    programme = service.get(session, programme_id=principal.programme.id)
    return ProgrammeOut.model_validate(service.update(session, programme=programme, data=body))


class DocumentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.DOCUMENT_OUT))

    version: int = Field(description="The live version (0: nothing applied yet)")
    document: dict[str, Any] | None


class ApplyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.APPLY_OUT))

    version: int = Field(description="The live version after the call")
    changed: bool = Field(description="Whether the document differs from the live version")
    applied: bool
    diff: str = Field(description="Unified diff of the live document's YAML against this one")
    document: dict[str, Any] = Field(description="The document as stored (defaults filled in)")


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.VERSION))

    version: int
    actor: str
    comment: str
    created_at: datetime


@router.get(
    "/programme/document", response_model=DocumentOut, summary="The live programme document"
)
def read_document(principal: Reader, session: DbSession) -> DocumentOut:
    programme = principal.programme
    return DocumentOut(
        version=programme.live_version,
        document=documents.live_document(session, programme=programme),
    )


@router.put(
    "/programme/document",
    response_model=ApplyOut,
    summary="Validate, diff and apply a programme document as a new version",
)
def apply_document(
    body: Annotated[dict[str, Any], Body(examples=[ex.DOCUMENT])],
    principal: Admin,
    session: DbSession,
    dry_run: Annotated[bool, Query(description="Validate and diff only")] = False,
    comment: Annotated[str, Query(max_length=500)] = "",
) -> ApplyOut:
    result = documents.apply(
        session,
        programme=principal.programme,
        raw=body,
        actor=f"api-key:{principal.key_id}",
        comment=comment,
        dry_run=dry_run,
    )
    applied = result.changed and not dry_run
    return ApplyOut(
        version=result.version,
        changed=result.changed,
        applied=applied,
        diff=result.diff,
        document=result.document,
    )


@router.get("/programme/versions", response_model=list[VersionOut])
def list_versions(principal: Reader, session: DbSession) -> list[VersionOut]:
    rows = documents.list_versions(session, programme=principal.programme)
    return [VersionOut.model_validate(r) for r in rows]


@router.get("/programme/versions/{version}", response_model=DocumentOut)
def read_version(version: int, principal: Reader, session: DbSession) -> DocumentOut:
    row = documents.get_version(session, programme=principal.programme, version=version)
    return DocumentOut(version=row.version, document=row.document)
