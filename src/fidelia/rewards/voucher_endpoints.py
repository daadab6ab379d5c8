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


@router.post(
    "/voucher-pools",
    response_model=PoolOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a voucher pool",
)
def create_pool(body: PoolIn, principal: Admin, session: DbSession) -> PoolOut:
    """Create a voucher pool: the discount its codes give (an `amount` in the programme currency or
    a `percent`), on the whole basket or on some `categories`, from a minimum basket, how many times
    a code may be used, and its validity (fixed dates and/or `validity_days` after issue, the
    earlier end wins). With a `pattern` (e.g. `BON10-XXXX-XXXX`) codes are generated as needed;
    without one, they must be imported.

    409: a pool with this code exists (so a retry cannot create it twice). 422: an invalid field (a
    pattern with fewer than 8 `X`, a percentage over 100, a validity that ends before it starts).

    Scope: `admin`.
    """
    pool = pools.create_pool(session, programme=principal.programme, data=body)
    return pools.out(pool, {})


@router.get("/voucher-pools", response_model=list[PoolOut], summary="The voucher pools")
def list_pools(principal: Reader, session: DbSession) -> list[PoolOut]:
    """The programme's voucher pools, each with its terms and how many of its vouchers are in each
    status (`available`: in stock, not issued yet; `active`, `used`, `expired`, `cancelled`).

    Scope: `read`.
    """
    found = pools.list_pools(session, programme=principal.programme)
    counts = pools.counts(session, pool_ids=[p.id for p in found])
    return [pools.out(p, counts.get(p.id, {})) for p in found]


@router.get("/voucher-pools/{code}", response_model=PoolOut, summary="Read a voucher pool")
def read_pool(code: str, principal: Reader, session: DbSession) -> PoolOut:
    """One voucher pool with its terms and the count of its vouchers by status.

    404: no such pool.

    Scope: `read`.
    """
    return _pool_out(session, code, principal)


@router.patch(
    "/voucher-pools/{code}",
    response_model=PoolOut,
    summary="Rename a pool or change its validity",
)
def update_pool(code: str, body: PoolUpdate, principal: Admin, session: DbSession) -> PoolOut:
    """Rename the pool or change its validity. The new validity applies to codes issued from now on;
    vouchers already issued keep theirs. Its discount terms never change: create a new pool. Sending
    the same changes again changes nothing more.

    404: no such pool. 422: a validity that ends before it starts.

    Scope: `admin`.
    """
    pools.update_pool(session, programme=principal.programme, code=code, changes=body)
    return _pool_out(session, code, principal)


@router.delete(
    "/voucher-pools/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an unused voucher pool",
)
def delete_pool(code: str, principal: Admin, session: DbSession) -> Response:
    """Delete a pool that has no code and no reward using it. Answers 204 with no body.

    404: no such pool (a retry after a deletion gets this 404). 409: the pool has codes or rewards.

    Scope: `admin`.
    """
    pools.delete_pool(session, programme=principal.programme, code=code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/voucher-pools/{code}/generate",
    response_model=CodesOut,
    status_code=status.HTTP_201_CREATED,
    summary="Generate codes from the pool's pattern",
)
def generate_codes(code: str, body: GenerateIn, principal: Admin, session: DbSession) -> CodesOut:
    """Stock the pool with `count` new unguessable codes made from its pattern (the answer lists the
    first 1,000). They wait in stock (`available`) until issued to a member or by a redemption. Each
    call adds new codes.

    404: no such pool. 409: the pool has no pattern (import its codes instead). 422: a count outside
    1-100,000.

    Scope: `admin`.
    """
    made = pools.generate_codes(session, programme=principal.programme, code=code, count=body.count)
    return CodesOut(created=len(made), codes=made[:SHOWN])


@router.post(
    "/voucher-pools/{code}/import",
    response_model=CodesOut,
    status_code=status.HTTP_201_CREATED,
    summary="Import existing codes into the pool",
)
def import_codes(code: str, body: ImportIn, principal: Admin, session: DbSession) -> CodesOut:
    """Add existing codes to the pool, all or nothing: one invalid or taken code rejects the whole
    list. With `bearer: true` the codes are usable at once by anyone (a printed campaign code);
    otherwise they stock the pool and are handed out one by one when issued. A retry of the same
    list is refused (its codes are taken) and adds nothing.

    404: no such pool. 409: some codes exist already in the programme (the detail lists them). 422:
    an empty list, a code twice, or a code that is not 3 to 64 capitals, digits and `-` (codes are
    taken in upper case, without spaces).

    Scope: `admin`.
    """
    made = pools.import_codes(
        session, programme=principal.programme, code=code, raw=body.codes, bearer=body.bearer
    )
    return CodesOut(created=len(made), codes=made[:SHOWN])


@router.post(
    "/voucher-pools/{code}/issue",
    response_model=VoucherOut,
    status_code=status.HTTP_201_CREATED,
    summary="Issue a voucher of the pool to a member",
)
def issue(code: str, body: IssueIn, principal: Admin, session: DbSession) -> VoucherOut:
    """An operator issues one voucher of the pool to a member (or, without `member_id`, a bearer
    voucher anyone may use): a code from stock, or a new one from the pattern, valid as the pool
    says from now.

    Retries: `idempotency_key` makes it happen once; sent again it answers the voucher issued the
    first time.

    404: no such pool or member. 409: `pool_exhausted` (no code in stock and no pattern to make
    one).

    Scope: `admin`.
    """
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


@router.get(
    "/members/{member_id}/vouchers",
    response_model=list[VoucherOut],
    summary="The member's vouchers, newest first",
)
def member_vouchers(
    member_id: uuid.UUID, principal: Reader, session: DbSession, status: str | None = None
) -> list[VoucherOut]:
    """The member's vouchers, newest first, optionally with one `status`; an active voucher past its
    end shows as `expired`.

    404: no such member.

    Scope: `read`.
    """
    found = vouchers.vouchers_of_member(
        session, programme=principal.programme, member_id=member_id, status=status
    )
    return [vouchers.out(session, v) for v in found]


@router.post(
    "/vouchers/validate",
    response_model=ValidationOut,
    summary="Check a code against a member and a basket (changes nothing)",
)
def validate(body: ValidateIn, principal: Integrator, session: DbSession) -> ValidationOut:
    """At the till: is this code valid for this member and this basket, and how much does it take
    off? Changes nothing, so it may be called at every change of the basket. An invalid code is
    still a 200, with `valid: false` and a `reason` for the cashier: `unknown`, `not_issued`,
    `cancelled`, `used`, `expired`, `not_yet_valid`, `foreign` (another member's), `member_required`
    (a personal code: identify the member), `min_basket`, `no_applicable_items` (none of the
    basket's lines is in the pool's categories).

    422: the basket gives neither a total nor lines, or an invalid field.

    Scope: `integration`.
    """
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
    responses={
        200: {
            "model": VoucherUseOut,
            "description": "A retry: the code was used for this order already",
        }
    },
    summary="Use a code for an order at the till",
)
def redeem(
    body: RedeemVoucherIn, principal: Integrator, session: DbSession, response: Response
) -> VoucherUseOut:
    """Use the code for an order: the use is recorded with the discount it gave on this basket, and
    a single-use code is then `used`. Two tills cannot both take the last use of a code.

    Retries: idempotent by `order_id`: a code already used for this order answers that use (200) and
    uses nothing more.

    409: the code is not valid for this member and basket; `error` names the reason, as in `POST
    /vouchers/validate`: `voucher_used`, `voucher_expired`, `voucher_foreign`,
    `voucher_min_basket`... and nothing is used. 422: an invalid field.

    Scope: `integration`.
    """
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
