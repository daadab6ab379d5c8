"""Webhook subscriptions, deliveries and the replay feed, as the API shows them."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fidelia.examples import examples
from fidelia.webhooks import examples as ex

NoticeType = Annotated[str, Field(max_length=100)]
"""A notice type (``points.earned``), a family (``points.*``) or ``*``."""
FeedCursor = Annotated[str, Field(max_length=18)]
"""A position of the feed, as the feed gives it (digits)."""

_TYPE = re.compile(r"^([a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+|[a-z][a-z0-9_]*\.\*|\*)$")


def _check_types(types: list[str]) -> list[str]:
    for i, name in enumerate(types):
        if not _TYPE.match(name):
            raise ValueError(
                f"types[{i}]: {name!r} is not a notice type (e.g. points.earned), "
                "a family (points.*) or *"
            )
    return sorted(set(types))


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=examples(ex.SUBSCRIPTION_IN, ex.SUBSCRIPTION_WITH_SECRET_IN),
    )

    url: str = Field(max_length=2000, description="https:// target (http only for loopback in "
                     "development)")  # fmt: skip
    types: list[NoticeType] = Field(
        min_length=1,
        max_length=100,
        description="Notice types wanted: `points.earned`, a family `points.*`, or `*` for all",
    )
    description: str | None = Field(default=None, max_length=500)
    secret: str | None = Field(
        default=None,
        min_length=24,
        max_length=128,
        description="The signing secret; generated (and shown once) when not given",
    )

    _types = field_validator("types")(_check_types)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=examples(ex.SUBSCRIPTION_PATCH, ex.SUBSCRIPTION_RESUME),
    )

    url: str | None = Field(default=None, max_length=2000)
    types: list[NoticeType] | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    status: Literal["active", "paused"] | None = Field(
        default=None, description="`paused` stops deliveries; `active` resumes them"
    )

    @field_validator("types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_types(value)


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra=examples(
            ex.SUBSCRIPTION, ex.SUBSCRIPTION_CREATED, ex.SUBSCRIPTION_PAUSED
        ),
    )

    id: uuid.UUID
    url: str
    types: list[str]
    description: str | None
    status: str
    paused_reason: str | None
    paused_at: datetime | None
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    cursor: str = Field(description="The last feed position turned into deliveries")
    created_at: datetime
    secret: str | None = Field(default=None, description="Shown once, when created or rotated")
    pending: int = 0
    failed: int = 0


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.DELIVERY))

    id: uuid.UUID = Field(description="The idempotency id sent as Fidelia-Delivery-Id")
    subscription_id: uuid.UUID
    notice_id: uuid.UUID
    type: str
    member_id: uuid.UUID | None
    cursor: str
    status: str
    attempts: int
    due_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.DELIVERY_PAGE))

    items: list[DeliveryOut]
    next: str | None = Field(description="Pass as ?before= for older deliveries")


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.REDELIVER_IN))

    after: FeedCursor | None = Field(
        default=None, description="Feed cursor: from after this position"
    )
    until: FeedCursor | None = Field(default=None, description="Feed cursor: up to this position")
    status: Literal["failed", "delivered", "any"] = Field(
        default="failed", description="Which deliveries of the range to send again"
    )


class Redelivered(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.REDELIVERED))

    redelivered: int


class FeedItem(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.FEED_ITEM, ex.TIER_FEED_ITEM))

    id: uuid.UUID
    type: str
    programme: str
    member_id: uuid.UUID | None
    occurred_at: datetime
    cursor: str
    data: dict[str, Any]


class FeedPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.FEED_PAGE))

    items: list[FeedItem]
    next: str = Field(description="The cursor to pass as ?after= next time")
    has_more: bool
