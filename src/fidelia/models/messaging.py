"""Messaging tables: messages with their delivery log, and the key that signs their links."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, created_at, uuid_pk

_EMAIL_DUE = "channel = 'email' AND status IN ('queued', 'deferred')"
_EMAIL_SENDING = "channel = 'email' AND status = 'sending'"


class Message(Base):
    """One message to one member, from queued to its last delivery status.

    ``status``: queued, deferred (contact pressure: waits for its slot), sent, delivered,
    opened, clicked, bounced, failed (with ``reason``: the provider's answer), not_sent (no
    reachable channel, consent withdrawn, same content already sent) or expired. The content
    is rendered when the message is queued, for the channel chosen then.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_programme_id_member_id_id", "programme_id", "member_id", "id"),
        Index("ix_messages_programme_id_status_id", "programme_id", "status", "id"),
        Index("ix_messages_member_id_sent_at", "member_id", "sent_at"),
        Index("ix_messages_member_id_content_key", "member_id", "content_key"),
        # batched email delivery: the due ones in order, and the claims whose lease ran out
        Index(
            "ix_messages_email_due",
            "due_at",
            "id",
            sqlite_where=text(_EMAIL_DUE),
            postgresql_where=text(_EMAIL_DUE),
        ),
        Index(
            "ix_messages_email_sending",
            "updated_at",
            sqlite_where=text(_EMAIL_SENDING),
            postgresql_where=text(_EMAIL_SENDING),
        ),
        UniqueConstraint("programme_id", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    template: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # marketing | transactional
    content_key: Mapped[str | None] = mapped_column(String(200))
    channels: Mapped[list[Any]] = mapped_column(default=list)  # the preference asked
    channel: Mapped[str | None] = mapped_column(String(16))  # the one chosen
    locale: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    links: Mapped[list[Any]] = mapped_column(default=list)  # URLs of the rendered message
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # event, survey, answers
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageLog(Base):
    """One step of a message's delivery (queued, deferred, retry, sent, opened...). Never
    changed."""

    __tablename__ = "message_log"
    __table_args__ = (Index("ix_message_log_message_id_at", "message_id", "at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(Text)


class MessagingKey(Base):
    """The programme's secret that signs unsubscribe, tracking and survey links (HMAC)."""

    __tablename__ = "messaging_keys"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at()


class BouncedAddress(Base):
    """An address a hard bounce proved dead: no channel sends to it again (send-time and
    queue-time reachability read it) until an operator or a new identity replaces it."""

    __tablename__ = "bounced_addresses"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    reason: Mapped[str] = mapped_column(Text)
    bounced_at: Mapped[datetime]
