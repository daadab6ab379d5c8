"""Plans API: the plans and their subscriptions (read), a member's subscription (read, and
operator changes: admin), payment endpoints (admin), the provider's signed webhook (no key:
its signature), and the till: quote and pay an order with cashback or points (integration)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from sqlalchemy.orm import Session

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.models.plans import PaymentEndpoint, Subscription
from fidelia.plans import service, till, webhooks
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import (
    LIVE_STATES,
    Benefits,
    EndpointIn,
    EndpointOut,
    PaymentOutcomeOut,
    PlanOut,
    PlanSubscriptionOut,
    PlanSweepOut,
    SubscribeIn,
    SubscriptionActionIn,
    SubscriptionChangeOut,
)

router = APIRouter(tags=["plans"], responses=ERROR_RESPONSES)


def sub_out(session: Session, programme: Programme, sub: Subscription) -> PlanSubscriptionOut:
    plan = sections_for(session, programme).plans.get(sub.plan)
    now = utcnow()
    current = service.effective(sub, plan, now)
    return PlanSubscriptionOut(
        id=sub.id,
        member_id=sub.member_id,
        plan=sub.plan,
        status=current,
        stored_status=sub.status,
        benefits_active=current in LIVE_STATES,
        provider_ref=sub.provider_ref,
        started_at=sub.started_at,
        trial_ends_at=sub.trial_ends_at,
        period_end=sub.period_end,
        grace_until=sub.grace_until,
        cancelled_at=sub.cancelled_at,
        ended_at=sub.ended_at,
        benefits=plan.benefits if plan is not None else Benefits(),
        history=[SubscriptionChangeOut.model_validate(c) for c in service.history(session, sub)],
    )


@router.get("/plans", response_model=list[PlanOut], summary="The paid plans")
def list_plans(principal: Reader, session: DbSession) -> list[PlanOut]:
    """The plans of the programme document (`plans`) with their subscriptions per stored status
    and the number of live ones (trialing, active, past due).

    Scope: `read`.
    """
    programme = principal.programme
    counts = service.counts(session, programme=programme)
    return [
        PlanOut(
            plan=plan,
            live=sum(n for s, n in counts.get(code, {}).items() if s in LIVE_STATES),
            by_status=counts.get(code, {}),
        )
        for code, plan in sorted(sections_for(session, programme).plans.items())
    ]


@router.get(
    "/members/{member_id}/subscription",
    response_model=PlanSubscriptionOut,
    summary="The member's subscription",
)
def get_subscription(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> PlanSubscriptionOut:
    """The member's live subscription (else their latest): its state now (`status`: a period or
    grace that ended counts at once, even before the sweep writes it), whether its benefits are
    active, its period, trial and grace, the plan's benefits and its history with the cause of
    each change (`operator`, `payment`, `schedule`).

    404: no such member, or no subscription.

    Scope: `read`.
    """
    sub = service.latest_of(session, principal.programme, member_id)
    return sub_out(session, principal.programme, sub)


@router.post(
    "/members/{member_id}/subscription",
    response_model=PlanSubscriptionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe the member to a plan",
)
def subscribe(
    member_id: uuid.UUID, body: SubscribeIn, principal: Admin, session: DbSession
) -> PlanSubscriptionOut:
    """Start a subscription to `plan`: `trialing` for the plan's trial days, else (or with
    `paid: true`) `active` for one period. Benefits start now.

    404: no such member. 409 `already_subscribed`: the member has a live subscription. 422: no
    such plan, or a plan that takes no new subscriptions.

    Scope: `admin`.
    """
    sub = service.subscribe(
        session,
        programme=principal.programme,
        member_id=member_id,
        plan_code=body.plan,
        provider_ref=body.provider_ref,
        paid=body.paid,
        actor=f"api_key:{principal.key_id}",
    )
    return sub_out(session, principal.programme, sub)


@router.post(
    "/members/{member_id}/subscription/actions",
    response_model=PlanSubscriptionOut,
    summary="Cancel, renew or mark a failed payment",
)
def act(
    member_id: uuid.UUID, body: SubscriptionActionIn, principal: Admin, session: DbSession
) -> PlanSubscriptionOut:
    """An operator's change to the member's live subscription: `cancel` (benefits stop now;
    points earned under them stay), `renew` (a period paid: active until one period after the
    current end), `payment_failed` (past due, benefits kept for the plan's grace days).

    404: no such member or no subscription. 409 `subscription_ended`: it has ended.

    Scope: `admin`.
    """
    programme = principal.programme
    sub = service.latest_of(session, programme, member_id)
    actor = f"api_key:{principal.key_id}"
    if body.action == "cancel":
        sub = service.cancel(session, programme=programme, sub_id=sub.id, actor=actor)
    elif body.action == "renew":
        sub = service.renew(session, programme=programme, sub_id=sub.id, actor=actor)
    else:
        sub = service.payment_failed(session, programme=programme, sub_id=sub.id, actor=actor)
    return sub_out(session, programme, sub)


@router.post("/plans/sweep", response_model=PlanSweepOut, summary="Write the subscriptions' lapses")
def sweep(principal: Admin, session: DbSession) -> PlanSweepOut:
    """Write the lapses the calendar reached (period ended unpaid: past due; grace over:
    expired), each dated when it happened. Reads already count them; this records them.

    Scope: `admin`.
    """
    return PlanSweepOut(changed=service.sweep(session, programme=principal.programme))


def _endpoint_out(request: Request, endpoint: PaymentEndpoint, secret: bool) -> EndpointOut:
    url = str(request.url_for("payment_webhook", endpoint_id=str(endpoint.id)))
    return EndpointOut(
        id=endpoint.id,
        name=endpoint.name,
        url=url,
        secret=endpoint.secret if secret else None,
        created_at=endpoint.created_at,
        revoked_at=endpoint.revoked_at,
    )


@router.post(
    "/payments/endpoints",
    response_model=EndpointOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a payment provider endpoint",
)
def create_endpoint(
    body: EndpointIn, request: Request, principal: Admin, session: DbSession
) -> EndpointOut:
    """A webhook URL for a payment provider and the secret that signs its deliveries (shown
    once). The provider signs each body: header `Fidelia-Signature: t=<unix>,v1=<hex
    HMAC-SHA256(secret, "<t>.<body>")>`.

    Scope: `admin`.
    """
    endpoint = webhooks.create_endpoint(session, programme=principal.programme, name=body.name)
    return _endpoint_out(request, endpoint, True)


@router.get(
    "/payments/endpoints", response_model=list[EndpointOut], summary="Payment provider endpoints"
)
def list_endpoints(request: Request, principal: Admin, session: DbSession) -> list[EndpointOut]:
    """The programme's payment endpoints (secrets are not shown again).

    Scope: `admin`.
    """
    found = webhooks.list_endpoints(session, programme=principal.programme)
    return [_endpoint_out(request, e, False) for e in found]


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/payments/{endpoint_id}/events",
    name="payment_webhook",
    response_model=PaymentOutcomeOut,
    summary="The payment provider's webhook (signed)",
)
def payment_webhook(
    endpoint_id: uuid.UUID,
    body: Annotated[bytes, Depends(_raw_body)],
    session: DbSession,
    response: Response,
    signature: Annotated[str | None, Header(alias="Fidelia-Signature")] = None,
) -> PaymentOutcomeOut:
    """A payment provider's event, authenticated by its signature (no API key): `type` is
    `subscription.created` (with `member_id` and `plan`), `payment.succeeded` (renews: active
    until `period_end`, or one period on), `payment.failed` (past due, grace) or
    `subscription.cancelled`; `subscription` is the provider's subscription id. Each event is
    applied once by its `id` (a redelivery answers the first outcome, `200`).

    401 `signature_mismatch`: missing, wrong or stale signature (older than 5 minutes); nothing
    is written. 422: a signed body that is not a valid event; nothing is written. An event the
    subscription cannot take (unknown, ended, wrong currency) is stored with its `outcome` and
    answered 200, so the provider stops retrying.
    """
    stored, replay = webhooks.receive(
        session, endpoint_id=endpoint_id, body=body, signature=signature
    )
    response.headers["Fidelia-Replay"] = "true" if replay else "false"
    sub = session.get(Subscription, stored.subscription_id) if stored.subscription_id else None
    programme = session.get(Programme, stored.programme_id)
    assert programme is not None
    return PaymentOutcomeOut(
        id=stored.id,
        outcome=stored.outcome,
        detail=stored.detail,
        subscription=sub_out(session, programme, sub) if sub is not None else None,
    )


@router.post("/till/quote", response_model=till.TillQuoteOut, summary="Can the wallet pay this?")
def till_quote(
    body: till.TillPayIn, principal: Integrator, session: DbSession
) -> till.TillQuoteOut:
    """Whether the member's `wallet` (cashback, or points where the programme's `till.pay_with`
    allows them) can pay `amount` of the order now, what it holds in the currency and the most
    the order can take. Writes nothing.

    404: no such member. 422: a wallet the till does not take, an amount over the order total
    or finer than the wallet's unit.

    Scope: `integration`.
    """
    return till.quote(session, programme=principal.programme, data=body)


@router.post(
    "/till/payments",
    response_model=till.TillPaymentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Pay an order with cashback or points",
)
def till_pay(
    body: till.TillPayIn, principal: Integrator, session: DbSession, response: Response
) -> till.TillPaymentOut:
    """Spend `amount` (in the currency) of the order from the member's `wallet`, soonest-expiring
    value first. Idempotent by `order_id` and wallet: a retry answers the first payment (`200`,
    `replay: true`). A return of the order (a `return` event) gives back the returned share.

    409 `insufficient_balance` (nothing spent), 409 `conflict`: the order was paid with another
    amount. 404, 422: as the quote.

    Scope: `integration`.
    """
    payment, replay = till.pay(session, programme=principal.programme, data=body)
    if replay:
        response.status_code = status.HTTP_200_OK
    return till.out(session, principal.programme, payment, replay)


@router.post(
    "/till/orders/{order_id}/cancel",
    response_model=list[till.TillPaymentOut],
    summary="Cancel an order's till payments",
)
def till_cancel(
    order_id: str, principal: Integrator, session: DbSession
) -> list[till.TillPaymentOut]:
    """The order did not go through: its till payments are reversed (the value goes back to the
    lots it came from). A reversed payment stays reversed on a retry.

    404: the order has no till payment. 409: a return refunded part of it already.

    Scope: `integration`.
    """
    found = till.cancel(
        session,
        programme=principal.programme,
        order_id=order_id,
        actor=f"api_key:{principal.key_id}",
    )
    return [till.out(session, principal.programme, p) for p in found]
