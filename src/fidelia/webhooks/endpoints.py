"""``/webhooks...`` (subscriptions, deliveries, redelivery) and ``GET /feed`` (replay)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from fidelia.auth.dependencies import Admin, DbSession, get_database
from fidelia.db import Database
from fidelia.errors import ERROR_RESPONSES
from fidelia.models import Notification
from fidelia.notices import sequence
from fidelia.webhooks import service
from fidelia.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    FeedPage,
    NoticeType,
    Redelivered,
    RedeliverIn,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)

router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)
DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]


@router.post("/webhooks", response_model=SubscriptionOut, status_code=201,
             summary="Subscribe a URL to notices")  # fmt: skip
def create(body: SubscriptionIn, principal: Admin, session: DbSession) -> SubscriptionOut:
    """A subscription: every notice of the given types recorded from now on is POSTed to
    `url`, signed with the secret (shown once here). The target must be `https://` (plain
    `http://` only for loopback hosts, in development with `FIDELIA_WEBHOOKS_ALLOW_LOOPBACK=1`),
    resolve and accept a connection. See docs/webhooks.md.

    422: a non-https, loopback or unreachable target, an unknown type pattern.

    Scope: `admin`.
    """
    return service.create(session, programme=principal.programme, data=body)


@router.get("/webhooks", response_model=list[SubscriptionOut], summary="The webhooks")
def list_webhooks(principal: Admin, session: DbSession) -> list[SubscriptionOut]:
    """The programme's subscriptions with their status (`active`, `paused` and why), failure
    counters and how many deliveries are pending or failed. Scope: `admin`."""
    return service.list_subscriptions(session, programme=principal.programme)


@router.get("/webhooks/{subscription_id}", response_model=SubscriptionOut, summary="A webhook")
def get_webhook(
    subscription_id: uuid.UUID, principal: Admin, session: DbSession
) -> SubscriptionOut:
    """One subscription. 404: not in this programme. Scope: `admin`."""
    sub = service.get(session, programme=principal.programme, subscription_id=subscription_id)
    return service.out(session, sub)


@router.patch("/webhooks/{subscription_id}", response_model=SubscriptionOut,
              summary="Change, pause or resume a webhook")  # fmt: skip
def patch(
    subscription_id: uuid.UUID, body: SubscriptionPatch, principal: Admin, session: DbSession
) -> SubscriptionOut:
    """Change the URL (checked as at creation), types or description; `status: paused`
    stops deliveries, `status: active` resumes them from where they stopped (notices
    recorded meanwhile are delivered, in order). Scope: `admin`."""
    return service.update_subscription(
        session, programme=principal.programme, subscription_id=subscription_id, data=body
    )


@router.post("/webhooks/{subscription_id}/rotate-secret", response_model=SubscriptionOut,
             summary="A new signing secret")  # fmt: skip
def rotate(subscription_id: uuid.UUID, principal: Admin, session: DbSession) -> SubscriptionOut:
    """A new secret, shown once; deliveries are signed with it from now on. Scope: `admin`."""
    return service.rotate_secret(
        session, programme=principal.programme, subscription_id=subscription_id
    )


@router.delete("/webhooks/{subscription_id}", status_code=204, summary="Delete a webhook")
def delete(subscription_id: uuid.UUID, principal: Admin, session: DbSession) -> Response:
    """The subscription and its deliveries. Scope: `admin`."""
    service.delete(session, programme=principal.programme, subscription_id=subscription_id)
    return Response(status_code=204)


@router.get("/webhooks/{subscription_id}/deliveries", response_model=DeliveryPage,
            summary="A webhook's deliveries")  # fmt: skip
def list_deliveries(
    subscription_id: uuid.UUID,
    principal: Admin,
    session: DbSession,
    status: DeliveryStatus | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    """Deliveries newest first, with attempts, the last HTTP status or error. Scope: `admin`."""
    items, after = service.deliveries(
        session,
        programme=principal.programme,
        subscription_id=subscription_id,
        status=status,
        before=before,
        limit=limit,
    )
    return DeliveryPage(items=items, next=after)


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", response_model=DeliveryOut,
             summary="Send one delivery again")  # fmt: skip
def redeliver(delivery_id: uuid.UUID, principal: Admin, session: DbSession) -> DeliveryOut:
    """Due now, with the same id (receivers recognise a delivery they already processed).
    404: no such delivery. Scope: `admin`."""
    return service.redeliver_one(session, programme=principal.programme, delivery_id=delivery_id)


@router.post("/webhooks/{subscription_id}/redeliver", response_model=Redelivered,
             summary="Send a range of deliveries again")  # fmt: skip
def redeliver_range(
    subscription_id: uuid.UUID, body: RedeliverIn, principal: Admin, session: DbSession
) -> Redelivered:
    """The subscription's deliveries of the feed range `after` < cursor <= `until` (failed
    ones by default; `status: any` for all), due now, same ids. Scope: `admin`."""
    n = service.redeliver_range(
        session, programme=principal.programme, subscription_id=subscription_id, data=body
    )
    return Redelivered(redelivered=n)


PASS = 5000


def _sequenced(request: Request) -> Database:
    """Give positions to every committed notice first (a write only when some have none), so
    the page holds what was committed before the request, however far the dispatcher is
    behind."""
    database = get_database(request)
    with database.transaction(readonly=True) as session:
        waiting = session.scalar(
            select(Notification.seq).where(Notification.position.is_(None)).limit(1)
        )
    while waiting is not None:  # a pass positions up to PASS, in its own transaction
        with database.transaction() as session:
            waiting = True if sequence(session, limit=PASS) == PASS else None
    return database


@router.get("/feed", response_model=FeedPage, summary="Replay the notices")
def feed(
    _: Annotated[Database, Depends(_sequenced)],  # first: before the session reads anything
    principal: Admin,
    session: DbSession,
    after: Annotated[str | None, Query(description="The `next` of the last page read")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    types: Annotated[
        list[NoticeType] | None, Query(max_length=50, description="Only these notice types")
    ] = None,
) -> FeedPage:
    """Every notice of the programme in order, after `after` (from the start without it):
    the same envelopes as the webhooks' bodies. Store `next` and pass it as `after` to catch
    up; positions never go back, even when transactions commit out of order. 422: a cursor
    that is not one. 410 `cursor_pruned`: the notices after `after` were pruned (older than
    the retention, see docs/webhooks.md); the error names the oldest cursor available.
    Scope: `admin`."""
    return service.feed(
        session, programme=principal.programme, after=after, limit=limit, types=types
    )
