"""referrals, leaderboards, streaks, store check-ins (issue 14)

Revision ID: 20261130_0016
Revises: 20261130_0015
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0016"
down_revision: str | None = "20261130_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


UTC = fidelia.models.base.UTCDateTime(timezone=True)
SCORE = sa.Numeric(16, 2)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        _fk("referral_codes", "member_id", "members"),
        _fk("referral_codes", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint(
            "programme_id", "code", name=op.f("uq_referral_codes_programme_id_code")
        ),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=False),
        sa.Column("referee_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("enrolled_at", UTC, nullable=False),
        sa.Column("qualified_at", UTC, nullable=True),
        sa.Column("order_id", sa.String(100), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("referrer_rewarded", sa.Boolean(), nullable=False),
        sa.Column("rewards", fidelia.models.base.JSONType, nullable=False),
        _fk("referrals", "programme_id", "programmes"),
        _fk("referrals", "referrer_id", "members"),
        _fk("referrals", "referee_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint(
            "programme_id", "referee_id", name=op.f("uq_referrals_programme_id_referee_id")
        ),
    )
    op.create_index("ix_referrals_referrer", "referrals", ["programme_id", "referrer_id"])
    op.create_table(
        "leaderboard_scores",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("board", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("score", SCORE, nullable=False),
        sa.Column("rank_score", SCORE, nullable=False),
        sa.Column("reached_at", UTC, nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=False),
        _fk("leaderboard_scores", "programme_id", "programmes"),
        _fk("leaderboard_scores", "member_id", "members"),
        sa.PrimaryKeyConstraint(
            "programme_id",
            "board",
            "period",
            "scope",
            "member_id",
            name=op.f("pk_leaderboard_scores"),
        ),
    )
    op.create_index(
        "ix_leaderboard_scores_rank",
        "leaderboard_scores",
        [
            "programme_id",
            "board",
            "period",
            "scope",
            "visible",
            "rank_score",
            "reached_at",
            "member_id",
        ],
    )
    op.create_index("ix_leaderboard_scores_member", "leaderboard_scores", ["member_id"])
    op.create_table(
        "leaderboard_counts",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("board", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("rank_score", SCORE, nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        _fk("leaderboard_counts", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint(
            "programme_id",
            "board",
            "period",
            "scope",
            "rank_score",
            name=op.f("pk_leaderboard_counts"),
        ),
    )
    op.create_table(
        "leaderboard_members",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("display_name", sa.String(40), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        _fk("leaderboard_members", "member_id", "members"),
        _fk("leaderboard_members", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_leaderboard_members")),
    )
    op.create_table(
        "leaderboard_payouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("board", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("paid_at", UTC, nullable=False),
        sa.Column("winners", fidelia.models.base.JSONType, nullable=False),
        _fk("leaderboard_payouts", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_payouts")),
        sa.UniqueConstraint(
            "programme_id",
            "board",
            "period",
            "scope",
            name=op.f("uq_leaderboard_payouts_programme_id_board_period_scope"),
        ),
    )
    op.create_table(
        "member_streaks",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("streak", sa.String(64), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.Column("best", sa.Integer(), nullable=False),
        sa.Column("started", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.Column("freezes_used", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        _fk("member_streaks", "member_id", "members"),
        _fk("member_streaks", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("member_id", "streak", name=op.f("pk_member_streaks")),
    )
    op.create_table(
        "store_check_ins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("distance_m", sa.Integer(), nullable=False),
        sa.Column("checked_in_at", UTC, nullable=False),
        _fk("store_check_ins", "programme_id", "programmes"),
        _fk("store_check_ins", "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_check_ins")),
        sa.UniqueConstraint(
            "programme_id",
            "member_id",
            "store",
            "day",
            name=op.f("uq_store_check_ins_programme_id_member_id_store_day"),
        ),
    )


def downgrade() -> None:
    op.drop_table("store_check_ins")
    op.drop_table("member_streaks")
    op.drop_table("leaderboard_payouts")
    op.drop_table("leaderboard_members")
    op.drop_table("leaderboard_counts")
    op.drop_index("ix_leaderboard_scores_member", table_name="leaderboard_scores")
    op.drop_index("ix_leaderboard_scores_rank", table_name="leaderboard_scores")
    op.drop_table("leaderboard_scores")
    op.drop_table("referrals")
    op.drop_table("referral_codes")
