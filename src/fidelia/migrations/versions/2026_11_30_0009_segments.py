"""segments: live segments, memberships and their history

Revision ID: 20261130_0009
Revises: 20261130_0008
Create Date: 2026-11-30 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0009"
down_revision: str | None = "20261130_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fks(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f(f"fk_{table}_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f(f"fk_{table}_member_id_members"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "segment_members",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("since", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        *_fks("segment_members"),
        sa.PrimaryKeyConstraint(
            "programme_id", "segment", "member_id", name=op.f("pk_segment_members")
        ),
    )
    op.create_index("ix_segment_members_member_id", "segment_members", ["member_id"])
    op.create_table(
        "segment_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        *_fks("segment_changes"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_segment_changes")),
    )
    op.create_index(
        "ix_segment_changes_programme_id_seq", "segment_changes", ["programme_id", "seq"]
    )
    op.create_index(
        "ix_segment_changes_segment_at", "segment_changes", ["programme_id", "segment", "at"]
    )
    op.create_index("ix_segment_changes_member_id_seq", "segment_changes", ["member_id", "seq"])
    # a type of event over a window, for a whole programme: an index-only range scan on
    # PostgreSQL (member_id included), instead of reading every event of the programme
    op.create_index(
        "ix_events_programme_id_type_occurred_at",
        "events",
        ["programme_id", "type", "occurred_at"],
        postgresql_include=["member_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_events_programme_id_type_occurred_at", table_name="events")
    op.drop_index("ix_segment_changes_member_id_seq", table_name="segment_changes")
    op.drop_index("ix_segment_changes_segment_at", table_name="segment_changes")
    op.drop_index("ix_segment_changes_programme_id_seq", table_name="segment_changes")
    op.drop_table("segment_changes")
    op.drop_index("ix_segment_members_member_id", table_name="segment_members")
    op.drop_table("segment_members")
