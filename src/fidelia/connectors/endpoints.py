"""``/connectors``: declare a shop's connector (admin) and receive its webhooks (signed)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from fidelia.auth.dependencies import Admin, DbSession
from fidelia.connectors import service
from fidelia.connectors.schemas import ConnectorIn, ConnectorOut, Received
from fidelia.errors import ERROR_RESPONSES

router = APIRouter(prefix="/connectors", tags=["connectors"], responses=ERROR_RESPONSES)


@router.post("", response_model=ConnectorOut, status_code=201, summary="Connect a shop")
def create(body: ConnectorIn, principal: Admin, session: DbSession) -> ConnectorOut:
    """A Shopify, WooCommerce or mapped connector; its `url` is where the platform posts
    its webhooks (see docs/connectors.md). 409: the slug is taken. 422: a bad mapping, with
    its path. Scope: `admin`."""
    return service.create(session, programme=principal.programme, data=body)


@router.get("", response_model=list[ConnectorOut], summary="The connectors")
def list_connectors(principal: Admin, session: DbSession) -> list[ConnectorOut]:
    """The programme's connectors, with how many webhooks each turned into events.
    Scope: `admin`."""
    return service.list_connectors(session, programme=principal.programme)


@router.delete("/{slug}", status_code=204, summary="Disconnect a shop")
def delete(slug: str, principal: Admin, session: DbSession) -> Response:
    """Webhooks sent to its URL are refused from now on (404). Scope: `admin`."""
    service.delete(session, programme=principal.programme, slug=slug)
    return Response(status_code=204)


async def _raw(request: Request) -> bytes:
    return await request.body()


@router.post("/{connector_id}/receive", response_model=Received,
             summary="Receive a platform's webhook")  # fmt: skip
def receive(
    connector_id: uuid.UUID,
    request: Request,
    body: Annotated[bytes, Depends(_raw)],
    session: DbSession,
) -> Received:
    """Called by the shop platform, not with an API key: the body must carry the platform's
    signature (`X-Shopify-Hmac-Sha256`, `X-WC-Webhook-Signature`, or for mapped connectors
    `Fidelia-Connector-Signature: sha256=<hex>`), checked with the connector's secret.

    200 `accepted` (the event it became, with the intake's outcome), `duplicate` (already
    received: nothing changed), `ignored` (a topic or order status that records nothing) or
    `ping`. 401: the signature does not match (nothing written). 404: unknown connector, or a
    refund of an order never received. 422: the payload cannot become a valid event (which
    field and why)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    return service.receive(session, connector_id=connector_id, headers=headers, body=body)
