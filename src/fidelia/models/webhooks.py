"""Notifications (the outbox), webhook subscriptions and their deliveries (issue 16).

``notifications`` is the transactional outbox: a domain writes its notices in the transaction
of the change that caused them (``fidelia.notices.record_many``). ``seq`` is the insertion
order; ``position`` is the replay cursor, assigned after commit by the sequencer
(``fidelia.notices.sequence``) under a lock, so that positions only ever grow in the order a
reader can see them, whatever the order of commits (docs/decisions.md, "Notifications").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, BigInt, created_at, uuid_pk


class Notification(Base):
    """One thing that happened, for webhooks and the replay feed."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_programme_id_position", "programme_id", "position"),
        Index(
            "ix_notifications_unsequenced",
            "seq",
            sqlite_where=text("position IS NULL"),
            postgresql_where=text("position IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    position: Mapped[int | None] = mapped_column(BigInt)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID | None]
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_at()


class NotificationSequence(Base):
    """The sequencer's one row: the last position given (locked while positions are given)."""

    __tablename__ = "notification_sequence"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInt, default=0)


class WebhookSubscription(Base):
    """A target URL of a programme, the notice types it wants, its signing secret.

    ``status``: active | paused (by the worker after a delivery failed for good, or by hand).
    ``cursor``: the last notification position turned into deliveries for it.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    types: Mapped[list[Any]] = mapped_column(default=list)
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    cursor: Mapped[int] = mapped_column(BigInt, default=0)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One notification for one subscription; its ``id`` is the idempotency id sent.

    ``status``: pending -> sending (leased by a worker) -> delivered, or back to pending with
    a later ``due_at``, or failed once the retry window has passed. A member's deliveries of
    a subscription go out in ``seq`` order: one waits while an earlier one is not finished.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_due_at", "status", "due_at"),
        Index("ix_webhook_deliveries_member", "subscription_id", "member_key", "seq"),
        Index("ix_webhook_deliveries_subscription_seq", "subscription_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    notification_seq: Mapped[int] = mapped_column(
        BigInt, ForeignKey("notifications.seq", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(BigInt)
    type: Mapped[str] = mapped_column(String(64))
    member_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    first_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class Connector(Base):
    """An inbound connector of a programme: a shop platform (``shopify``, ``woocommerce``) or
    a ``mapped`` webhook (``mapping`` declares how a JSON body becomes an event), with the
    secret its signatures are checked against. Its ``slug`` names it in the URL."""

    __tablename__ = "connectors"
    __table_args__ = (
        Index("uq_connectors_programme_id_slug", "programme_id", "slug", unique=True),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    secret: Mapped[str] = mapped_column(String(256))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")
    received: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    last_received_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class FeedHorizon(Base):
    """How far a programme's notices were pruned: every notice at a position up to
    ``pruned_through`` is gone. A feed cursor below it gets a 410 naming the oldest cursor
    that still works (``pruned_through``)."""

    __tablename__ = "feed_horizons"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    pruned_through: Mapped[int] = mapped_column(BigInt)
    pruned_at: Mapped[datetime]
