"""Inbound connectors as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fidelia.connectors import examples as ex
from fidelia.examples import examples
from fidelia.kit.bounds import FreeJson


class ConnectorIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=examples(ex.SHOPIFY_IN, ex.MAPPED_IN),
    )

    slug: str = Field(max_length=48, pattern=r"^[a-z0-9][a-z0-9-]{0,47}$", description="Names "
                      "the shop in event ids and external ids (e.g. `eshop`)")  # fmt: skip
    kind: Literal["shopify", "woocommerce", "mapped"]
    secret: str = Field(
        min_length=8,
        max_length=256,
        description="Shopify: the app's client secret (or the webhook signing secret shown in "
        "the admin); WooCommerce: the webhook's secret; mapped: a secret you share",
    )
    settings: FreeJson = Field(
        default_factory=dict,
        description="`mapping` (mapped connectors): how a body becomes an event; "
        "`enrol_unknown`: `active` or `prospect` to enrol customers the programme does not "
        "know yet (default: the programme's policy)",
    )


class ConnectorOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra=examples(ex.SHOPIFY, ex.MAPPED)
    )

    id: uuid.UUID
    slug: str
    kind: str
    status: str
    settings: dict[str, Any]
    received: int
    last_received_at: datetime | None
    created_at: datetime
    url: str = Field(description="Where the platform posts (under the API's base URL)")


class Received(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.RECEIVED, ex.RECEIVED_IGNORED))

    status: Literal["accepted", "duplicate", "ignored", "ping"]
    event_id: uuid.UUID | None = None
    event: str | None = Field(default=None, description="The event's idempotency key")
    detail: str | None = None
    outcome: dict[str, Any] | None = None
