"""Inbound connectors: check the platform's signature, map the body, ingest the event.

A body whose signature does not match is refused (401) before it is parsed: nothing is
written, not even a counter. The event goes through the intake (``intake.service.ingest``)
like any other, with an id built from the platform's ids, so a webhook the platform sends
again is a ``duplicate`` and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.connectors import mapping, platforms
from fidelia.connectors.schemas import ConnectorIn, ConnectorOut, Received
from fidelia.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from fidelia.intake import service as intake
from fidelia.kit.clock import utcnow
from fidelia.models import Connector, Event, Programme

SIGNATURE_HEADERS = {
    "shopify": "x-shopify-hmac-sha256",
    "woocommerce": "x-wc-webhook-signature",
    "mapped": "fidelia-connector-signature",
}
TOPIC_HEADERS = {"shopify": "x-shopify-topic", "woocommerce": "x-wc-webhook-topic"}


def url_of(connector: Connector) -> str:
    return f"/api/v1/connectors/{connector.id}/receive"


def out(connector: Connector) -> ConnectorOut:
    return ConnectorOut.model_validate(
        {
            **{k: getattr(connector, k) for k in ConnectorOut.model_fields if k != "url"},
            "url": url_of(connector),
        }
    )


def create(session: Session, *, programme: Programme, data: ConnectorIn) -> ConnectorOut:
    """A connector of the programme; 409 if the slug is taken, 422 for a bad mapping."""
    if data.kind == "mapped":
        mapping.check_mapping(data.settings.get("mapping"))
    if data.settings.get("enrol_unknown") not in (None, "active", "prospect"):
        raise ValidationFailed.on(("settings", "enrol_unknown"), "one of active, prospect")
    taken = session.scalar(select(func.count()).where(
        Connector.programme_id == programme.id, Connector.slug == data.slug))  # fmt: skip
    if taken:
        raise Conflict(f"connector {data.slug!r} exists", fields=[])
    connector = Connector(
        id=uuid.uuid4(), programme_id=programme.id, slug=data.slug, kind=data.kind,
        secret=data.secret, settings=data.settings, status="active", received=0, refused=0,
    )  # fmt: skip
    session.add(connector)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"connector {data.slug!r} exists") from None
    return out(connector)


def list_connectors(session: Session, *, programme: Programme) -> list[ConnectorOut]:
    found = session.scalars(
        select(Connector).where(Connector.programme_id == programme.id).order_by(Connector.slug)
    )
    return [out(c) for c in found]


def get(session: Session, *, programme: Programme, slug: str) -> Connector:
    found = session.scalar(
        select(Connector).where(Connector.programme_id == programme.id, Connector.slug == slug)
    )
    if found is None:
        raise NotFound(f"connector {slug!r} does not exist")
    return found


def delete(session: Session, *, programme: Programme, slug: str) -> None:
    session.delete(get(session, programme=programme, slug=slug))
    session.flush()


def signed(kind: str, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the platform's signature header signs ``body`` with ``secret``."""
    given = headers.get(SIGNATURE_HEADERS[kind], "")
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    hexed = "sha256=" + digest.hex()
    expected = hexed if kind == "mapped" else base64.b64encode(digest).decode()
    return bool(given) and hmac.compare_digest(expected.encode(), given.strip().encode())


def receive(
    session: Session, *, connector_id: uuid.UUID, headers: Mapping[str, str], body: bytes
) -> Received:
    """Check, map and ingest one platform webhook (see the module note)."""
    connector = session.get(Connector, connector_id)
    if connector is None or connector.status != "active":
        raise NotFound(f"connector {connector_id} does not exist")
    unsigned = SIGNATURE_HEADERS["woocommerce"] not in headers
    if connector.kind == "woocommerce" and unsigned and body.startswith(b"webhook_id="):
        return Received(status="ping")  # WooCommerce's ping when a webhook is saved
    if not signed(connector.kind, connector.secret, headers, body):
        raise Unauthorized(f"the {SIGNATURE_HEADERS[connector.kind]} signature does not match")
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValidationFailed.on("body", "is not JSON") from None
    programme = session.get(Programme, connector.programme_id)
    assert programme is not None
    event = _event(session, connector, headers.get(TOPIC_HEADERS.get(connector.kind, ""), ""),
                   payload)  # fmt: skip
    if event is None:
        return Received(status="ignored", detail="nothing to record for this topic or status")
    enrol = connector.settings.get("enrol_unknown")  # "active" | "prospect" | programme's
    outcomes = intake.ingest_payloads(
        session,
        programme=programme,
        payloads=[event],
        actor=f"connector:{connector.slug}",
        enrol_unknown=enrol if enrol in ("active", "prospect") else None,
    )
    outcome = outcomes[0]
    if outcome.status == "rejected":
        raise ValidationFailed(f"{event['id']}: {outcome.detail}", fields=[])
    connector.received += 1
    connector.last_received_at = utcnow()
    session.flush()
    return Received(
        status=outcome.status, event_id=outcome.event_id, event=event["id"],
        outcome=outcome.model_dump(mode="json", exclude={"index"}),
    )  # fmt: skip


def _event(
    session: Session, connector: Connector, topic: str, payload: Any
) -> dict[str, Any] | None:
    slug, kind = connector.slug, connector.kind
    if not isinstance(payload, dict):
        raise ValidationFailed.on("body", "must be a JSON object")
    if kind == "mapped":
        return mapping.event_of(slug, connector.settings.get("mapping") or {}, payload)
    if kind == "shopify":
        if topic in ("orders/create", "orders/paid"):
            return platforms.shopify_order(slug, payload)
        if topic == "refunds/create":
            purchase_key, event = platforms.shopify_refund(slug, payload)
            event["member"] = {"id": str(_member_of(session, connector, purchase_key))}
            return event
        if topic in ("customers/create", "customers/update"):
            return platforms.shopify_customer(slug, payload, created=topic == "customers/create")
        return None
    if topic in ("order.created", "order.updated"):
        return platforms.woo_order(slug, payload)
    if topic in ("customer.created", "customer.updated"):
        return platforms.woo_customer(slug, payload, created=topic == "customer.created")
    return None


def _member_of(session: Session, connector: Connector, purchase_key: str) -> uuid.UUID:
    member_id = session.scalar(
        select(Event.member_id).where(
            Event.programme_id == connector.programme_id, Event.idempotency_key == purchase_key
        )
    )
    if member_id is None:
        raise NotFound(f"the refunded order ({purchase_key}) was never received; send it first")
    return member_id
