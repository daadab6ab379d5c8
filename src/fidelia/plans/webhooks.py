"""The payment provider's webhook: a generic adapter with HMAC-SHA256 signatures.

Design note
-----------
A provider posts JSON events to ``/api/v1/payments/{endpoint_id}/events`` with the header
``Fidelia-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
``HMAC-SHA256(secret, "<t>.<raw body>")`` (the Stripe scheme, so most providers' relays can
produce it). The signature is checked on the raw bytes before anything is parsed, in constant
time, and ``t`` must be within five minutes of now (a replayed old delivery is refused): a
mismatch is a 401 and writes nothing. A verified event is stored once by the provider's event
id (a redelivery answers what the first did) and moves the subscription it names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.errors import (
    Conflict,
    FideliaError,
    FieldError,
    NotFound,
    Unauthorized,
    ValidationFailed,
    error_message,
)
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.models.plans import PaymentEndpoint, PaymentEvent, Subscription
from fidelia.plans import service
from fidelia.plans.schemas import PaymentEventIn

HEADER = "Fidelia-Signature"
TOLERANCE_SECONDS = 300


class SignatureMismatch(Unauthorized):
    code = "signature_mismatch"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a provider sends for ``body`` at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str | None, now: datetime) -> None:
    """Raise :class:`SignatureMismatch` unless ``header`` signs ``body`` with ``secret``."""
    if not header:
        raise SignatureMismatch(f"the {HEADER} header is missing")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        raise SignatureMismatch(f"{HEADER}: t is not a unix time") from None
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        raise SignatureMismatch(f"{HEADER}: t is more than {TOLERANCE_SECONDS} s from now")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        raise SignatureMismatch("the signature does not match the body")


def create_endpoint(session: Session, *, programme: Programme, name: str) -> PaymentEndpoint:
    endpoint = PaymentEndpoint(
        programme_id=programme.id, name=name, secret=f"whsec_{secrets.token_hex(24)}"
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def list_endpoints(session: Session, *, programme: Programme) -> list[PaymentEndpoint]:
    return list(
        session.scalars(
            select(PaymentEndpoint)
            .where(PaymentEndpoint.programme_id == programme.id)
            .order_by(PaymentEndpoint.created_at)
        )
    )


def _endpoint(session: Session, endpoint_id: uuid.UUID) -> PaymentEndpoint:
    endpoint = session.get(PaymentEndpoint, endpoint_id)
    if endpoint is None or endpoint.revoked_at is not None:
        raise NotFound(f"payment endpoint {endpoint_id} does not exist")
    return endpoint


def _parse(body: bytes) -> PaymentEventIn:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed.on("body", "not a JSON document") from None
    try:
        return PaymentEventIn.model_validate(raw)
    except ValidationError as exc:
        fields = [FieldError(("body", *e["loc"]), error_message(e)) for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(p) for p in f.loc)}: {f.msg}" for f in fields)
        raise ValidationFailed(detail, fields=fields) from None


def receive(
    session: Session,
    *,
    endpoint_id: uuid.UUID,
    body: bytes,
    signature: str | None,
    now: datetime | None = None,
) -> tuple[PaymentEvent, bool]:
    """Verify, store once and apply one delivery: (the stored event, whether it is a replay).

    401 ``signature_mismatch`` and 422 (a verified body that is not a valid event) write
    nothing; an event the subscription cannot take (unknown subscription, ended, wrong
    currency) is stored with its outcome and answered 200, so the provider stops retrying."""
    now = now or utcnow()
    endpoint = _endpoint(session, endpoint_id)
    verify(endpoint.secret, body, signature, now)
    event = _parse(body)
    done = session.scalar(
        select(PaymentEvent).where(
            PaymentEvent.endpoint_id == endpoint.id, PaymentEvent.provider_event_id == event.id
        )
    )
    if done is not None:
        return done, True
    programme = session.get(Programme, endpoint.programme_id)
    assert programme is not None
    stored = PaymentEvent(
        programme_id=programme.id,
        endpoint_id=endpoint.id,
        provider_event_id=event.id,
        type=event.type,
        payload=event.model_dump(mode="json"),
        outcome="applied",
    )
    session.add(stored)
    try:
        session.flush()
    except IntegrityError:  # the same delivery, concurrently: the other one applies it
        raise Conflict("this event is being applied by a concurrent delivery") from None
    try:
        with session.begin_nested():
            sub = _apply(session, programme, event, stored.id, now)
        stored.subscription_id = sub.id
    except FideliaError as err:
        stored.outcome, stored.detail = err.code, err.detail
    session.flush()
    return stored, False


def _apply(
    session: Session,
    programme: Programme,
    event: PaymentEventIn,
    event_id: uuid.UUID,
    now: datetime,
) -> Subscription:
    if event.type == "subscription.created":
        assert event.member_id is not None
        assert event.plan is not None
        return service.subscribe(
            session,
            programme=programme,
            member_id=event.member_id,
            plan_code=event.plan,
            provider_ref=event.subscription,
            now=now,
            cause="payment",
            payment_event_id=event_id,
        )
    sub = session.scalar(
        select(Subscription).where(
            Subscription.programme_id == programme.id,
            Subscription.provider_ref == event.subscription,
        )
    )
    if sub is None:
        raise NotFound(f"no subscription {event.subscription!r} from this provider")
    if event.type == "payment.succeeded":
        plan = service.plan_of(session, programme, sub.plan)
        if event.currency is not None and event.currency != plan.currency:
            raise ValidationFailed.on("currency", f"plan {plan.code!r} is paid in {plan.currency}")
        return service.renew(
            session,
            programme=programme,
            sub_id=sub.id,
            period_end=event.period_end,
            now=now,
            cause="payment",
            payment_event_id=event_id,
        )
    if event.type == "payment.failed":
        return service.payment_failed(
            session,
            programme=programme,
            sub_id=sub.id,
            now=now,
            cause="payment",
            payment_event_id=event_id,
        )
    return service.cancel(
        session,
        programme=programme,
        sub_id=sub.id,
        now=now,
        cause="payment",
        payment_event_id=event_id,
    )
