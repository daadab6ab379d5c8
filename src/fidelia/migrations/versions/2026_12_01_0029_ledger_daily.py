"""ledger daily aggregate for the points economy KPIs (issue 15)

``analytics_ledger_daily``: the member-account side of the ledger per programme, UTC day,
wallet, transaction kind and rule (sums and counts), so that the points economy of a period and
the outstanding balance at any day end read a few thousand rows instead of the period's
entries. ``analytics_state.ledger_to`` is its own watermark (NULL: built in full by the next
refresh). Two indexes
on ``ledger_transactions``: ``(programme_id, posted_at)`` finds what was posted since the
watermark (and lets ``fresh`` probe it), ``(programme_id, occurred_at)`` reads the days to
recompute. The watermark of the other aggregates is cleared too: the next refresh rebuilds
them, valuing the returns that gave no ``refund_total`` from their purchase.

Revision ID: 20261201_0029
Revises: 20261130_0028
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261201_0029"
down_revision: str | None = "20261130_0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = fidelia.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "analytics_ledger_daily",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("transactions", BIG, nullable=False),
        sa.Column("amount", BIG, nullable=False),
        sa.Column("pending", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_analytics_ledger_daily_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["ledger_wallets.id"],
            name=op.f("fk_analytics_ledger_daily_wallet_id_ledger_wallets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "programme_id",
            "day",
            "wallet_id",
            "kind",
            "rule_id",
            name=op.f("pk_analytics_ledger_daily"),
        ),
    )
    with op.batch_alter_table("analytics_state") as batch:
        batch.add_column(sa.Column("ledger_to", UTC, nullable=True))
    op.create_index(
        "ix_ledger_transactions_programme_id_posted_at",
        "ledger_transactions",
        ["programme_id", "posted_at"],
    )
    op.create_index(
        "ix_ledger_transactions_programme_id_occurred_at",
        "ledger_transactions",
        ["programme_id", "occurred_at"],
    )
    # returns without refund_total are now valued: the daily sales are rebuilt by the next refresh
    op.execute("UPDATE analytics_state SET refreshed_to = NULL")


def downgrade() -> None:
    op.drop_index("ix_ledger_transactions_programme_id_occurred_at", "ledger_transactions")
    op.drop_index("ix_ledger_transactions_programme_id_posted_at", "ledger_transactions")
    with op.batch_alter_table("analytics_state") as batch:
        batch.drop_column("ledger_to")
    op.drop_table("analytics_ledger_daily")
