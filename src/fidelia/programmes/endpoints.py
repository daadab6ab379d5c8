from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
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
    """The programme the API key belongs to: its currency, time zone, locale, country and policies.
    Every other call works inside this programme.

    Scope: `read`.
    """
    return ProgrammeOut.model_validate(principal.programme)


@router.patch("/programme", response_model=ProgrammeOut, summary="Change name, locale or policies")
def update_programme(body: ProgrammeUpdate, principal: Admin, session: DbSession) -> ProgrammeOut:
    """Change the programme's name, locale or policies (`settings`, e.g. whether intake enrols a
    prospect for an unknown identity). Absent fields are left as they are; currency, time zone and
    country never change. Sending the same body again changes nothing more.

    422: an invalid field (e.g. a locale that is not `ll` or `ll-CC`), named in `fields`.

    Scope: `admin`.
    """
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
    """The live programme document, as stored (defaults filled in, rule versions kept by the
    system), and its version. `document` is null and `version` 0 before a first document is applied.

    Scope: `read`.
    """
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
    """Validate a whole programme document (settings, wallets, earning rules, tiers, badges,
    challenges, voucher pools, rewards), show its diff against the live version and, unless
    `dry_run=true` or nothing changed, store it as a new immutable version that becomes live. A rule
    whose content changed gets its version bumped, so that every ledger entry names the exact rule
    that produced it. Applying the live document again changes nothing (`changed` false, no new
    version), so a retry is harmless.

    422: the document is invalid, and nothing is stored; `fields` gives the path of each error
    inside the body (e.g. `["body", "rules", 0, "award", "rate"]`). Changing the terms of a voucher
    pool already in use, or the kind of a reward, is invalid too: give them a new code.

    Scope: `admin`.
    """
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


@router.get(
    "/programme/versions",
    response_model=list[VersionOut],
    summary="The versions of the programme document, newest first",
)
def list_versions(principal: Reader, session: DbSession) -> list[VersionOut]:
    """Every version of the programme document, newest first: who applied it (`api-key:<id>`, the
    CLI, the demo), the comment given and when. Read one with `GET /programme/versions/{version}`.

    Scope: `read`.
    """
    rows = documents.list_versions(session, programme=principal.programme)
    return [VersionOut.model_validate(r) for r in rows]


@router.get(
    "/programme/versions/{version}",
    response_model=DocumentOut,
    summary="One version of the programme document",
)
def read_version(
    version: Annotated[int, Path(ge=1, le=1_000_000)], principal: Reader, session: DbSession
) -> DocumentOut:
    """One version of the programme document, as it was stored (versions are immutable).

    404: no such version.

    Scope: `read`.
    """
    row = documents.get_version(session, programme=principal.programme, version=version)
    return DocumentOut(version=row.version, document=row.document)
