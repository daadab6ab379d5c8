"""scenarios: journeys, entries, steps, holdouts (issue 11)

Revision ID: 20261130_0018
Revises: 20261130_0017
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fidelia.models.base

revision: str = "20261130_0018"
down_revision: str | None = "20261130_0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scenario_journeys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("scenario", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("entry_key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=True),
        _at("due_at", nullable=True),
        sa.Column("waiting", _json(), nullable=True),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("event", _json(), nullable=False),
        _at("entered_at"),
        _at("converted_at", nullable=True),
        _at("ended_at", nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        _fk("scenario_journeys", "programme_id", "programmes"),
        _fk("scenario_journeys", "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario_journeys")),
        sa.UniqueConstraint(
            "programme_id",
            "scenario",
            "member_id",
            "entry_key",
            name=op.f("uq_scenario_journeys_programme_id_scenario_member_id_entry_key"),
        ),
    )
    op.create_index("ix_scenario_journeys_status_due_at", "scenario_journeys", ["status", "due_at"])
    op.create_index(
        "ix_scenario_journeys_programme_id_scenario_status",
        "scenario_journeys",
        ["programme_id", "scenario", "status"],
    )
    op.create_index(
        "ix_scenario_journeys_member_id_entered_at",
        "scenario_journeys",
        ["member_id", "entered_at"],
    )
    op.create_table(
        "scenario_step_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("scenario", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("visit", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        _at("at"),
        _fk("scenario_step_runs", "programme_id", "programmes"),
        _fk("scenario_step_runs", "journey_id", "scenario_journeys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario_step_runs")),
        sa.UniqueConstraint(
            "journey_id", "visit", name=op.f("uq_scenario_step_runs_journey_id_visit")
        ),
    )
    op.create_index(
        "ix_scenario_step_runs_programme_id_scenario_step",
        "scenario_step_runs",
        ["programme_id", "scenario", "step"],
    )
    op.create_table(
        "scenario_cursors",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("position", sa.String(length=64), nullable=False),
        _fk("scenario_cursors", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("programme_id", "feed", name=op.f("pk_scenario_cursors")),
    )


def downgrade() -> None:
    op.drop_table("scenario_cursors")
    op.drop_table("scenario_step_runs")
    op.drop_table("scenario_journeys")
