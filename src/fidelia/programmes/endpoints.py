from __future__ import annotations

from fastapi import APIRouter

from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.programmes import service
from fidelia.programmes.schemas import ProgrammeOut, ProgrammeUpdate

router = APIRouter(tags=["programme"], responses=ERROR_RESPONSES)


@router.get("/programme", response_model=ProgrammeOut, summary="The programme of the calling key")
def read_programme(principal: Reader) -> ProgrammeOut:
    return ProgrammeOut.model_validate(principal.programme)


@router.patch("/programme", response_model=ProgrammeOut, summary="Change name, locale or policies")
def update_programme(body: ProgrammeUpdate, principal: Admin, session: DbSession) -> ProgrammeOut:
    programme = service.get(session, programme_id=principal.programme.id)
    return ProgrammeOut.model_validate(service.update(session, programme=programme, data=body))
