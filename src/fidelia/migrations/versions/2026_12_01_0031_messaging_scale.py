"""messaging at scale (issue 11)

Two partial indexes for batched email delivery: the due email messages in due order (a
batch reads the first 500 of them, not all that are due), and the claims whose lease ran out.

Revision ID: 20261201_0031
Revises: 20261201_0030
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_0031"
down_revision: str | None = "20261201_0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DUE = "channel = 'email' AND status IN ('queued', 'deferred')"
SENDING = "channel = 'email' AND status = 'sending'"


def upgrade() -> None:
    op.create_index(
        "ix_messages_email_due",
        "messages",
        ["due_at", "id"],
        sqlite_where=sa.text(DUE),
        postgresql_where=sa.text(DUE),
    )
    op.create_index(
        "ix_messages_email_sending",
        "messages",
        ["updated_at"],
        sqlite_where=sa.text(SENDING),
        postgresql_where=sa.text(SENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_email_sending", table_name="messages")
    op.drop_index("ix_messages_email_due", table_name="messages")
