"""Rewards API: the catalogue (admin), a member's catalogue and redemptions (integration to
redeem, read to look), donation totals. Voucher pools and the till are in ``voucher_endpoints``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.kit.bounds import Instant
from fidelia.kit.pagination import Page
from fidelia.members import service as members
from fidelia.models import Programme, Redemption, Reward
from fidelia.rewards import donations, redemptions, vouchers
from fidelia.rewards import service as catalogue
from fidelia.rewards.schemas import (
    CancelIn,
    DonationTotalOut,
    FulfilIn,
    MemberRewardOut,
    RedeemIn,
    RedemptionOut,
    RewardIn,
    RewardKind,
    RewardOut,
    RewardUpdate,
)
from fidelia.rewards.voucher_endpoints import router as voucher_router

router = APIRouter(tags=["rewards"], responses=ERROR_RESPONSES)
router.include_router(voucher_router)


@router.post(
    "/rewards",
    response_model=RewardOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a reward to the catalogue",
)
def create_reward(body: RewardIn, principal: Admin, session: DbSession) -> RewardOut:
    """Add a reward to the catalogue: a voucher (its codes come from a voucher `pool`), a product, a
    donation to an `association` (`value`: the money one unit gives), an experience, an event, an
    early access, or a cashback conversion (`value`: the money credited per unit). Its price in
    points may differ by tier (`cost_by_tier`); stock, availability window, eligible tiers, a
    condition over the member's profile and state, a limit per member and a first-N cap restrict who
    may redeem it.

    409: a reward with this code exists (so a retry cannot create it twice). 404: the voucher `pool`
    does not exist. 422: an invalid field or combination (a voucher without `pool`, a donation
    without `association` and `value`, an invalid condition, a window that ends before it starts).

    Scope: `admin`.
    """
    reward = catalogue.create(session, programme=principal.programme, data=body)
    return catalogue.out(session, reward)


@router.get("/rewards", response_model=list[RewardOut], summary="The catalogue")
def list_rewards(
    principal: Reader,
    session: DbSession,
    kind: RewardKind | None = None,
    archived: bool = False,
) -> list[RewardOut]:
    """The catalogue, featured rewards first, optionally of one `kind`; archived rewards only with
    `archived=true`. For what one member may redeem, at their price, see `GET
    /members/{member_id}/rewards`.

    Scope: `read`.
    """
    found = catalogue.list_rewards(
        session, programme=principal.programme, archived=archived, kind=kind
    )
    return [catalogue.out(session, r) for r in found]


@router.get("/rewards/{reward_id}", response_model=RewardOut, summary="Read a reward")
def read_reward(reward_id: uuid.UUID, principal: Reader, session: DbSession) -> RewardOut:
    """One reward of the catalogue, archived or not.

    404: no such reward.

    Scope: `read`.
    """
    reward = catalogue.get(session, programme=principal.programme, reward_id=reward_id)
    return catalogue.out(session, reward)


@router.patch("/rewards/{reward_id}", response_model=RewardOut, summary="Change a reward")
def update_reward(
    reward_id: uuid.UUID, body: RewardUpdate, principal: Admin, session: DbSession
) -> RewardOut:
    """Change some fields of a reward (`code` and `kind` never change); the result is validated as a
    whole, as on creation. Redemptions already made keep what they cost. Sending the same changes
    again changes nothing more.

    404: no such reward (or voucher pool). 422: the reward would be invalid.

    Scope: `admin`.
    """
    reward = catalogue.update(
        session, programme=principal.programme, reward_id=reward_id, changes=body
    )
    return catalogue.out(session, reward)


@router.delete("/rewards/{reward_id}", response_model=RewardOut, summary="Archive a reward")
def archive_reward(reward_id: uuid.UUID, principal: Admin, session: DbSession) -> RewardOut:
    """Archive the reward: hidden from catalogues and no longer redeemable; its past redemptions
    stay as they are. Archiving it again changes nothing.

    404: no such reward.

    Scope: `admin`.
    """
    reward = catalogue.archive(session, programme=principal.programme, reward_id=reward_id)
    return catalogue.out(session, reward)


@router.get(
    "/members/{member_id}/rewards",
    response_model=list[MemberRewardOut],
    summary="The catalogue as one member sees it",
)
def member_catalogue(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[MemberRewardOut]:
    """The visible catalogue as one member sees it: the price they pay (their tier's price if there
    is one), whether they may redeem it now (`eligible`, and the `reasons` if not: `not_available`,
    `tier`, `condition`, `out_of_stock`, `limit_reached`, `first_n_reached`) and whether their
    available points cover it (`affordable`).

    404: no such member.

    Scope: `read`.
    """
    programme = principal.programme
    member = members.get(session, programme=programme, member_id=member_id)
    offers = catalogue.catalogue_for(session, programme=programme, member=member)
    return [
        MemberRewardOut(
            reward=catalogue.out(session, o.reward),
            price=o.price,
            eligible=not o.reasons,
            reasons=o.reasons,
            affordable=o.affordable,
        )
        for o in offers
    ]


def redemption_out(session: Session, programme: Programme, found: Redemption) -> RedemptionOut:
    reward = session.get(Reward, found.reward_id)
    voucher = redemptions.voucher_of(session, found)
    return RedemptionOut(
        id=found.id,
        member_id=found.member_id,
        reward_id=found.reward_id,
        reward=reward.code if reward else "",
        kind=found.kind,
        status=found.status,
        idempotency_key=found.idempotency_key,
        quantity=found.quantity,
        points=found.points,
        value=redemptions.value_of(programme, found),
        association=found.association,
        spend_transaction_id=found.spend_transaction_id,
        refund_transaction_id=found.refund_transaction_id,
        cashback_transaction_id=found.cashback_transaction_id,
        voucher=vouchers.out(session, voucher) if voucher else None,
        fulfilment=found.fulfilment,
        requested_at=found.requested_at,
        issued_at=found.issued_at,
        used_at=found.used_at,
        expires_at=found.expires_at,
        cancelled_at=found.cancelled_at,
        cancel_reason=found.cancel_reason,
    )


@router.post(
    "/members/{member_id}/redemptions",
    response_model=RedemptionOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": RedemptionOut, "description": "A retry: the first redemption with this key"}
    },
    summary="Redeem a reward for a member",
)
def redeem(
    member_id: uuid.UUID,
    body: RedeemIn,
    principal: Integrator,
    session: DbSession,
    response: Response,
) -> RedemptionOut:
    """Redeem a reward for the member, all at once: the points are spent (soonest-expiring first),
    the stock taken, and the voucher issued (for a voucher reward), the cashback credited, the
    donation recorded, or the fulfilment requested (a product, an experience: its details in
    `fulfilment`).

    Retries: `idempotency_key` makes the redemption happen once; sent again with the same reward and
    member it answers the first redemption (200) and spends nothing more.

    404: no such member or reward. 409: `insufficient_balance` (the available points do not cover
    the price), `not_redeemable` (the detail says why: window, tier, condition, limit, first N),
    `out_of_stock`, `pool_exhausted` (no code left to issue), or `idempotency_key_reused` (the key
    redeemed another reward or member). 422: an invalid field (a voucher reward is redeemed one unit
    at a time). A refused redemption spends nothing.

    Scope: `integration`.
    """
    programme = principal.programme
    replay = redemptions.by_key(session, programme, body.idempotency_key) is not None
    found = redemptions.redeem(
        session,
        programme=programme,
        member_id=member_id,
        reward=body.reward,
        idempotency_key=body.idempotency_key,
        quantity=body.quantity,
        fulfilment=body.fulfilment,
    )
    if replay:
        response.status_code = status.HTTP_200_OK
    return redemption_out(session, programme, found)


@router.get(
    "/members/{member_id}/redemptions",
    response_model=Page[RedemptionOut],
    summary="The member's redemptions, newest first",
)
def member_redemptions(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[RedemptionOut]:
    """The member's redemptions, newest first, optionally with one `status` (`requested`, `issued`,
    `used`, `expired`, `cancelled`), each with its voucher if it has one. Paged: pass the
    `next_cursor` of a page as `cursor`.

    404: no such member. 422: a cursor this API did not give.

    Scope: `read`.
    """
    programme = principal.programme
    rows, next_cursor = redemptions.list_for_member(
        session, programme=programme, member_id=member_id, status=status, cursor=cursor, limit=limit
    )
    return Page(
        items=[redemption_out(session, programme, r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/redemptions/{redemption_id}", response_model=RedemptionOut, summary="Read a redemption"
)
def read_redemption(
    redemption_id: uuid.UUID, principal: Reader, session: DbSession
) -> RedemptionOut:
    """One redemption: what it cost, its status and dates, its voucher or fulfilment, and the ledger
    transactions that spent (and, if cancelled, refunded) the points.

    404: no such redemption.

    Scope: `read`.
    """
    programme = principal.programme
    found = redemptions.get(session, programme=programme, redemption_id=redemption_id)
    return redemption_out(session, programme, found)


@router.post(
    "/redemptions/{redemption_id}/cancel",
    response_model=RedemptionOut,
    summary="Cancel a redemption (points refunded)",
)
def cancel_redemption(
    redemption_id: uuid.UUID, body: CancelIn, principal: Integrator, session: DbSession
) -> RedemptionOut:
    """Cancel an issued redemption: the points are refunded (a linked ledger transaction), the stock
    returned, and its voucher cancelled.

    404: no such redemption. 409: `invalid_state`: the redemption is not `issued` (already
    cancelled, used or expired; a retry of a cancellation is refused this way and changes nothing),
    or its voucher has been used.

    Scope: `integration`.
    """
    programme = principal.programme
    found = redemptions.cancel(
        session,
        programme=programme,
        redemption_id=redemption_id,
        reason=body.reason,
        actor=body.actor,
    )
    return redemption_out(session, programme, found)


@router.post(
    "/redemptions/{redemption_id}/fulfil",
    response_model=RedemptionOut,
    summary="Record the delivery of a redemption",
)
def fulfil_redemption(
    redemption_id: uuid.UUID, body: FulfilIn, principal: Integrator, session: DbSession
) -> RedemptionOut:
    """Record the delivery of a product, an experience, an event or an early access (status `used`),
    with who delivered it and the details (tracking number, notes).

    404: no such redemption. 409: `invalid_state`: the redemption is not `issued` (a retry of a
    fulfilment is refused this way), or its kind is not delivered by hand (vouchers are used at the
    till, donations and cashback are done at once).

    Scope: `integration`.
    """
    programme = principal.programme
    found = redemptions.fulfil(
        session,
        programme=programme,
        redemption_id=redemption_id,
        actor=body.actor,
        details=body.details,
    )
    return redemption_out(session, programme, found)


@router.get(
    "/donations/totals",
    response_model=list[DonationTotalOut],
    summary="Donations per association",
)
def donation_totals(
    principal: Reader,
    session: DbSession,
    since: Instant | None = None,
    until: Instant | None = None,
) -> list[DonationTotalOut]:
    """Donations per association between `since` and `until` (inclusive, exclusive; all time by
    default): how many, the points converted and the money given, for the transfers to make.

    422: a date-time without offset or out of range.

    Scope: `read`.
    """
    rows = donations.totals(session, programme=principal.programme, since=since, until=until)
    return [DonationTotalOut(**asdict(row)) for row in rows]
