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


@router.post("/rewards", response_model=RewardOut, status_code=status.HTTP_201_CREATED)
def create_reward(body: RewardIn, principal: Admin, session: DbSession) -> RewardOut:
    """Add a reward to the catalogue."""
    reward = catalogue.create(session, programme=principal.programme, data=body)
    return catalogue.out(session, reward)


@router.get("/rewards", response_model=list[RewardOut])
def list_rewards(
    principal: Reader,
    session: DbSession,
    kind: RewardKind | None = None,
    archived: bool = False,
) -> list[RewardOut]:
    """The catalogue, featured first (archived rewards with ``archived=true``)."""
    found = catalogue.list_rewards(
        session, programme=principal.programme, archived=archived, kind=kind
    )
    return [catalogue.out(session, r) for r in found]


@router.get("/rewards/{reward_id}", response_model=RewardOut)
def read_reward(reward_id: uuid.UUID, principal: Reader, session: DbSession) -> RewardOut:
    reward = catalogue.get(session, programme=principal.programme, reward_id=reward_id)
    return catalogue.out(session, reward)


@router.patch("/rewards/{reward_id}", response_model=RewardOut)
def update_reward(
    reward_id: uuid.UUID, body: RewardUpdate, principal: Admin, session: DbSession
) -> RewardOut:
    """Change some fields; the result is validated as a whole."""
    reward = catalogue.update(
        session, programme=principal.programme, reward_id=reward_id, changes=body
    )
    return catalogue.out(session, reward)


@router.delete("/rewards/{reward_id}", response_model=RewardOut)
def archive_reward(reward_id: uuid.UUID, principal: Admin, session: DbSession) -> RewardOut:
    """Archive the reward: hidden and no longer redeemable; past redemptions stay."""
    reward = catalogue.archive(session, programme=principal.programme, reward_id=reward_id)
    return catalogue.out(session, reward)


@router.get("/members/{member_id}/rewards", response_model=list[MemberRewardOut])
def member_catalogue(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[MemberRewardOut]:
    """The visible catalogue for one member: their price, and why they may not redeem."""
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
    responses={200: {"description": "A retry: the first redemption with this key"}},
)
def redeem(
    member_id: uuid.UUID,
    body: RedeemIn,
    principal: Integrator,
    session: DbSession,
    response: Response,
) -> RedemptionOut:
    """Redeem a reward: points spent and the voucher or fulfilment created, all at once."""
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


@router.get("/members/{member_id}/redemptions", response_model=Page[RedemptionOut])
def member_redemptions(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[RedemptionOut]:
    """The member's redemptions, newest first."""
    programme = principal.programme
    rows, next_cursor = redemptions.list_for_member(
        session, programme=programme, member_id=member_id, status=status, cursor=cursor, limit=limit
    )
    return Page(
        items=[redemption_out(session, programme, r) for r in rows], next_cursor=next_cursor
    )


@router.get("/redemptions/{redemption_id}", response_model=RedemptionOut)
def read_redemption(
    redemption_id: uuid.UUID, principal: Reader, session: DbSession
) -> RedemptionOut:
    programme = principal.programme
    found = redemptions.get(session, programme=programme, redemption_id=redemption_id)
    return redemption_out(session, programme, found)


@router.post("/redemptions/{redemption_id}/cancel", response_model=RedemptionOut)
def cancel_redemption(
    redemption_id: uuid.UUID, body: CancelIn, principal: Integrator, session: DbSession
) -> RedemptionOut:
    """Cancel an issued redemption: points refunded, stock returned, voucher cancelled."""
    programme = principal.programme
    found = redemptions.cancel(
        session,
        programme=programme,
        redemption_id=redemption_id,
        reason=body.reason,
        actor=body.actor,
    )
    return redemption_out(session, programme, found)


@router.post("/redemptions/{redemption_id}/fulfil", response_model=RedemptionOut)
def fulfil_redemption(
    redemption_id: uuid.UUID, body: FulfilIn, principal: Integrator, session: DbSession
) -> RedemptionOut:
    """Record the delivery of a product, experience or donation (status used)."""
    programme = principal.programme
    found = redemptions.fulfil(
        session,
        programme=programme,
        redemption_id=redemption_id,
        actor=body.actor,
        details=body.details,
    )
    return redemption_out(session, programme, found)


@router.get("/donations/totals", response_model=list[DonationTotalOut])
def donation_totals(
    principal: Reader,
    session: DbSession,
    since: Instant | None = None,
    until: Instant | None = None,
) -> list[DonationTotalOut]:
    """Donations per association: how many, the points converted, the money given."""
    rows = donations.totals(session, programme=principal.programme, since=since, until=until)
    return [DonationTotalOut(**asdict(row)) for row in rows]
