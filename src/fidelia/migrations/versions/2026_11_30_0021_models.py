"""analytics models: CLV fits, recommendation models (issue 15)

Revision ID: 20261130_0021
Revises: 20261130_0020
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "20261130_0021"
down_revision: str | None = "20261130_0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
