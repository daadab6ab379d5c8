"""Voucher API: pools (admin), generating, importing and issuing codes (admin), a member's
vouchers (read), and the till: validate and redeem a code (integration)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.auth.service import Principal
from fidelia.errors import ERROR_RESPONSES
from fidelia.rewards import pools, till, vouchers
from fidelia.rewards.schemas import (
    CodesOut,
    GenerateIn,
    ImportIn,
    IssueIn,
    PoolIn,
    PoolOut,
    PoolUpdate,
    RedeemVoucherIn,
    ValidateIn,
    ValidationOut,
    VoucherOut,
    VoucherUseOut,
)

router = APIRouter(tags=["vouchers"], responses=ERROR_RESPONSES)
SHOWN = 1000


def _pool_out(session: Session, pool_code: str, principal: Principal) -> PoolOut:
    pool = pools.get_pool(session, programme=principal.programme, code=pool_code)
    return pools.out(pool, pools.counts(session, pool_ids=[pool.id]).get(pool.id, {}))


@router.post("/voucher-pools", response_model=PoolOut, status_code=status.HTTP_201_CREATED)
def create_pool(body: PoolIn, principal: Admin, session: DbSession) -> PoolOut:
    """A pool of codes with its discount (amount or percent), conditions and validity."""
    pool = pools.create_pool(session, programme=principal.programme, data=body)
    return pools.out(pool, {})


@router.get("/voucher-pools", response_model=list[PoolOut])
def list_pools(principal: Reader, session: DbSession) -> list[PoolOut]:
    found = pools.list_pools(session, programme=principal.programme)
    counts = pools.counts(session, pool_ids=[p.id for p in found])
    return [pools.out(p, counts.get(p.id, {})) for p in found]


@router.get("/voucher-pools/{code}", response_model=PoolOut)
def read_pool(code: str, principal: Reader, session: DbSession) -> PoolOut:
    return _pool_out(session, code, principal)


@router.patch("/voucher-pools/{code}", response_model=PoolOut)
def update_pool(code: str, body: PoolUpdate, principal: Admin, session: DbSession) -> PoolOut:
    """Rename the pool or change its validity (applies to codes issued from now on)."""
    pools.update_pool(session, programme=principal.programme, code=code, changes=body)
    return _pool_out(session, code, principal)


@router.delete("/voucher-pools/{code}", status_code=status.HTTP_204_NO_CONTENT)
def delete_pool(code: str, principal: Admin, session: DbSession) -> Response:
    """Delete a pool without codes or rewards."""
    pools.delete_pool(session, programme=principal.programme, code=code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/voucher-pools/{code}/generate", response_model=CodesOut, status_code=status.HTTP_201_CREATED
)
def generate_codes(code: str, body: GenerateIn, principal: Admin, session: DbSession) -> CodesOut:
    """Stock the pool with N new unguessable codes from its pattern."""
    made = pools.generate_codes(session, programme=principal.programme, code=code, count=body.count)
    return CodesOut(created=len(made), codes=made[:SHOWN])


@router.post(
    "/voucher-pools/{code}/import", response_model=CodesOut, status_code=status.HTTP_201_CREATED
)
def import_codes(code: str, body: ImportIn, principal: Admin, session: DbSession) -> CodesOut:
    """Add existing codes (all or nothing: a bad or taken code rejects the whole list)."""
    made = pools.import_codes(
        session, programme=principal.programme, code=code, raw=body.codes, bearer=body.bearer
    )
    return CodesOut(created=len(made), codes=made[:SHOWN])


@router.post(
    "/voucher-pools/{code}/issue", response_model=VoucherOut, status_code=status.HTTP_201_CREATED
)
def issue(code: str, body: IssueIn, principal: Admin, session: DbSession) -> VoucherOut:
    """An operator issues one voucher of the pool to a member (idempotent by key)."""
    programme = principal.programme
    voucher = vouchers.issue(
        session,
        programme=programme,
        member_id=body.member_id,
        pool=pools.get_pool(session, programme=programme, code=code),
        source="operator",
        source_id=body.actor,
        idempotency_key=body.idempotency_key,
    )
    return vouchers.out(session, voucher)


@router.get("/members/{member_id}/vouchers", response_model=list[VoucherOut])
def member_vouchers(
    member_id: uuid.UUID, principal: Reader, session: DbSession, status: str | None = None
) -> list[VoucherOut]:
    """The member's vouchers, newest first (an active one past its end shows as expired)."""
    found = vouchers.vouchers_of_member(
        session, programme=principal.programme, member_id=member_id, status=status
    )
    return [vouchers.out(session, v) for v in found]


@router.post("/vouchers/validate", response_model=ValidationOut)
def validate(body: ValidateIn, principal: Integrator, session: DbSession) -> ValidationOut:
    """Is this code valid for this member and basket, and what does it take off? Changes
    nothing; an invalid code is a 200 with ``valid: false`` and a ``reason``."""
    verdict = till.validate(session, programme=principal.programme, data=body)
    voucher = verdict.voucher
    return ValidationOut(
        valid=verdict.valid,
        reason=verdict.reason,
        detail=verdict.detail,
        code=verdict.code,
        voucher_id=voucher.id if voucher else None,
        discount=verdict.discount,
        uses_left=voucher.max_uses - voucher.uses if voucher else None,
        valid_until=voucher.valid_until if voucher else None,
    )


@router.post(
    "/vouchers/redeem",
    response_model=VoucherUseOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A retry: the code was used for this order already"}},
)
def redeem(
    body: RedeemVoucherIn, principal: Integrator, session: DbSession, response: Response
) -> VoucherUseOut:
    """Use a code for an order (idempotent by order id). An invalid code is a 409 whose
    ``error`` names the reason: ``voucher_used``, ``voucher_expired``, ``voucher_foreign``..."""
    use, voucher, replay = till.redeem(session, programme=principal.programme, data=body)
    if replay:
        response.status_code = status.HTTP_200_OK
    return VoucherUseOut(
        voucher_id=voucher.id,
        code=voucher.code,
        order_id=use.order_id,
        member_id=use.member_id,
        discount=use.discount,
        basket_total=use.basket_total,
        used_at=use.used_at,
        uses_left=voucher.max_uses - voucher.uses,
    )
