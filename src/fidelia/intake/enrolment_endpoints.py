"""``POST /members``: enrolment is an event, so its door belongs to the intake."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from fidelia.auth.dependencies import DbSession, Integrator
from fidelia.errors import ERROR_RESPONSES
from fidelia.intake import enrolment
from fidelia.members import service
from fidelia.members.schemas import EnrolledMemberOut, EnrolmentOut, MemberCreate

router = APIRouter(prefix="/members", tags=["members"], responses=ERROR_RESPONSES)


@router.post(
    "",
    response_model=EnrolledMemberOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": EnrolledMemberOut, "description": "A resend: the first enrolment"}},
    summary="Enrol a member (their enrolment event runs the programme)",
)
def enrol(
    body: MemberCreate,
    principal: Integrator,
    session: DbSession,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=enrolment.IDEMPOTENCY_HEADER,
            min_length=1,
            max_length=200,
            description="Makes a retry safe: a resend answers the first enrolment (200); "
            "it becomes the enrolment event's id",
        ),
    ] = None,
) -> EnrolledMemberOut:
    """Enrol a person: their identities (card, email, phone, external ids: each unique in the
    programme), profile and consents. The enrolment runs through the event intake as an `enrolment`
    event, so the programme's rules, badges and tier apply to it at once; `enrolment` in the answer
    says what it earned (e.g. a welcome voucher).

    Retries: send an `Idempotency-Key` header; a resend with the same key answers the first
    enrolment (200) and enrols no one twice. Without a key, a resend is refused as a taken identity
    (409), which is harmless too.

    409: an identity belongs to another member (`fields` names it, e.g. `["body", "card"]`), or the
    `Idempotency-Key` was used for another request. 422: no identity at all, the same identity
    twice, or an invalid field.

    Scope: `integration`.
    """
    enrolled = enrolment.enrol(
        session,
        programme=principal.programme,
        data=body,
        actor=f"api_key:{principal.key_id}",
        idempotency_key=idempotency_key,
    )
    if enrolled.outcome.status == "duplicate":
        response.status_code = status.HTTP_200_OK
    member = service.details(session, member=enrolled.member)
    outcome = enrolled.outcome.model_dump(include=set(EnrolmentOut.model_fields))
    return EnrolledMemberOut.model_validate({**member, "enrolment": outcome})
