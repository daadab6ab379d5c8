"""member portal: sign-in codes and member sessions (issue 13)

Revision ID: 20261130_0017
Revises: 20261130_0016
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "20261130_0017"
down_revision: str | None = "20261130_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
