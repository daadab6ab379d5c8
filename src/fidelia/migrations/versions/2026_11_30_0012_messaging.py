"""messaging: templates, messages and their delivery log, inbox, contact pressure, surveys

Revision ID: 20261130_0012
Revises: 20261130_0011
Create Date: 2026-11-30 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fidelia.models.base

revision: str = "20261130_0012"
down_revision: str | None = "20261130_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "messaging_keys",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        _at("created_at"),
        _fk("messaging_keys", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("programme_id", name=op.f("pk_messaging_keys")),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("content_key", sa.String(length=200), nullable=True),
        sa.Column("channels", _json(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("links", _json(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("due_at"),
        _at("expires_at", nullable=True),
        _at("sent_at", nullable=True),
        _at("delivered_at", nullable=True),
        _at("opened_at", nullable=True),
        _at("clicked_at", nullable=True),
        _at("read_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _fk("messages", "member_id", "members"),
        _fk("messages", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "programme_id",
            "idempotency_key",
            name=op.f("uq_messages_programme_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_member_id_content_key", ["member_id", "content_key"])
        batch_op.create_index("ix_messages_member_id_sent_at", ["member_id", "sent_at"])
        batch_op.create_index(
            "ix_messages_programme_id_member_id_id", ["programme_id", "member_id", "id"]
        )
        batch_op.create_index(
            "ix_messages_programme_id_status_id", ["programme_id", "status", "id"]
        )
    op.create_table(
        "message_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("at"),
        sa.Column("detail", sa.Text(), nullable=True),
        _fk("message_log", "message_id", "messages"),
        _fk("message_log", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
    )
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.create_index("ix_message_log_message_id_at", ["message_id", "at"])


def downgrade() -> None:
    op.drop_table("message_log")
    op.drop_table("messages")
    op.drop_table("messaging_keys")
