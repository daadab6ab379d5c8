"""Transfers API: a member gives value to another member; a member's transfers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from fidelia.auth.dependencies import DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.kit.pagination import Page
from fidelia.transfers import service
from fidelia.transfers.schemas import TransferIn, TransferOut

router = APIRouter(tags=["transfers"], responses=ERROR_RESPONSES)


@router.post(
    "/members/{member_id}/transfers",
    response_model=TransferOut,
    status_code=status.HTTP_201_CREATED,
    summary="Give value to another member",
)
def create_transfer(
    member_id: uuid.UUID,
    body: TransferIn,
    principal: Integrator,
    session: DbSession,
    response: Response,
) -> TransferOut:
    """The member `member_id` gives `amount` of `wallet` to the member `to` names (by id or any
    identity), under the programme's `transfers` policy (off unless the programme document
    enables it). The sender's lots are consumed soonest-expiring first and the receiver gets
    them with the same expiry (a transfer never extends validity); both see a
    `points.transferred` notice (webhooks, feed).

    Retries: the same `reference` from the same sender gives back the first transfer (200
    instead of 201); a `reference` used for another transfer is a 409 `reference_reused`.

    Refusals write nothing and name their reason in `error`: 403 `transfers_disabled`; 409
    `wallet_not_transferable`, `sender_inactive`, `receiver_inactive` (closed, suspended,
    merged, prospect), `member_too_new`, `monthly_sent_limit`, `monthly_received_limit`,
    `monthly_count_limit`, `insufficient_balance`; 422 `amount_below_minimum`,
    `amount_above_maximum`, `self_transfer`; 404 no such member in this programme.

    Scope: `integration`.
    """
    given = service.give(
        session,
        programme=principal.programme,
        sender_id=member_id,
        to=body.to,
        wallet=body.wallet,
        amount=body.amount,
        reference=body.reference,
        channel="api",
        actor=f"api_key:{principal.key_id}",
        reason=body.reason,
    )
    if given.replayed:
        response.status_code = status.HTTP_200_OK
    return service.out(given.transfer, given.wallet, member_id)


@router.get(
    "/members/{member_id}/transfers",
    response_model=Page[TransferOut],
    summary="The member's transfers, given and received, newest first",
)
def member_transfers(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[TransferOut]:
    """The transfers the member gave (`direction: sent`) and received, newest first. Paged: pass
    the `next_cursor` of a page as `cursor`.

    404: no such member. 422: a cursor this API did not give.

    Scope: `read`.
    """
    items, next_cursor = service.of_member(
        session, programme=principal.programme, member_id=member_id, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)
