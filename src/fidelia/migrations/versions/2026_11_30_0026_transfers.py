"""points transfers between members; feed horizons of pruned notices; export jobs (issue 16)

Revision ID: 20261130_0026
Revises: 20261130_0025
Create Date: 2026-11-30 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0026"
down_revision: str | None = "20261130_0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "point_transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=False),
        sa.Column("receiver_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("created_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_point_transfers_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["ledger_wallets.id"],
            name=op.f("fk_point_transfers_wallet_id_ledger_wallets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["members.id"],
            name=op.f("fk_point_transfers_sender_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["receiver_id"],
            ["members.id"],
            name=op.f("fk_point_transfers_receiver_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_point_transfers_transaction_id_ledger_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_transfers")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_point_transfers_transaction_id")),
    )
    op.create_index(
        "uq_point_transfers_sender_reference",
        "point_transfers",
        ["programme_id", "sender_id", "reference"],
        unique=True,
    )
    op.create_index(
        "ix_point_transfers_sender",
        "point_transfers",
        ["programme_id", "sender_id", "created_at"],
    )
    op.create_index(
        "ix_point_transfers_receiver",
        "point_transfers",
        ["programme_id", "receiver_id", "created_at"],
    )
    op.create_table(
        "feed_horizons",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column(
            "pruned_through", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("pruned_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_feed_horizons_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("programme_id", name=op.f("pk_feed_horizons")),
    )
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "export_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("since", fidelia.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_done", big, nullable=False),
        sa.Column("rows_estimated", big, nullable=False),
        sa.Column("size_bytes", big, nullable=False),
        sa.Column("last_key", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_export_runs_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_runs")),
    )
    op.create_index(
        op.f("ix_export_runs_programme_id"), "export_runs", ["programme_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_export_runs_programme_id"), table_name="export_runs")
    op.drop_table("export_runs")
    op.drop_table("feed_horizons")
    op.drop_index("ix_point_transfers_receiver", table_name="point_transfers")
    op.drop_index("ix_point_transfers_sender", table_name="point_transfers")
    op.drop_index("uq_point_transfers_sender_reference", table_name="point_transfers")
    op.drop_table("point_transfers")
