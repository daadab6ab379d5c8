"""outbound webhooks: notifications outbox, subscriptions, deliveries (issue 16)

Revision ID: 20261130_0013
Revises: 20261130_0012
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fidelia.models.base

revision: str = "20261130_0013"
down_revision: str | None = "20261130_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big() -> sa.types.TypeEngine[Any]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str, key: str = "id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.{key}"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("seq", _big(), autoincrement=True, nullable=False),
        sa.Column("position", _big(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        _at("occurred_at"),
        sa.Column("payload", _json(), nullable=False),
        _at("created_at"),
        _fk("notifications", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_notifications")),
        sa.UniqueConstraint("id", name=op.f("uq_notifications_id")),
    )
    op.create_index(
        "ix_notifications_programme_id_position", "notifications", ["programme_id", "position"]
    )
    op.create_index(
        "ix_notifications_unsequenced",
        "notifications",
        ["seq"],
        sqlite_where=sa.text("position IS NULL"),
        postgresql_where=sa.text("position IS NULL"),
    )
    op.create_table(
        "notification_sequence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_position", _big(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_sequence")),
    )
    op.execute("INSERT INTO notification_sequence (id, last_position) VALUES (1, 0)")
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("types", _json(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor", _big(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        _at("paused_at", nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        _at("last_success_at", nullable=True),
        _at("last_failure_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _fk("webhook_subscriptions", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(
        "ix_webhook_subscriptions_programme_id", "webhook_subscriptions", ["programme_id"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", _big(), autoincrement=True, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("notification_seq", _big(), nullable=False),
        sa.Column("position", _big(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("member_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("due_at"),
        _at("lease_until", nullable=True),
        _at("first_attempt_at", nullable=True),
        _at("last_attempt_at", nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("delivered_at", nullable=True),
        _at("created_at"),
        _fk("webhook_deliveries", "programme_id", "programmes"),
        _fk("webhook_deliveries", "subscription_id", "webhook_subscriptions"),
        _fk("webhook_deliveries", "notification_seq", "notifications", "seq"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("id", name=op.f("uq_webhook_deliveries_id")),
    )
    op.create_index(
        "ix_webhook_deliveries_status_due_at", "webhook_deliveries", ["status", "due_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_member",
        "webhook_deliveries",
        ["subscription_id", "member_key", "seq"],
    )
    op.create_index(
        "ix_webhook_deliveries_subscription_seq", "webhook_deliveries", ["subscription_id", "seq"]
    )
    op.create_table(
        "connectors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=False),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        _at("last_received_at", nullable=True),
        _at("created_at"),
        _fk("connectors", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connectors")),
    )
    op.create_index(
        "uq_connectors_programme_id_slug", "connectors", ["programme_id", "slug"], unique=True
    )


def downgrade() -> None:
    op.drop_table("connectors")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
    op.drop_table("notification_sequence")
    op.drop_table("notifications")
