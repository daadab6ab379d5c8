"""offers, first-N, plans and subscriptions, till payments, perks (issue 14)

Revision ID: 20261130_0020
Revises: 20261130_0019
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "20261130_0020"
down_revision: str | None = "20261130_0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
