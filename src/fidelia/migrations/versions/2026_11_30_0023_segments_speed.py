"""segment sweeps and previews at scale (issue 10)

Revision ID: 20261130_0023
Revises: 20261130_0022
Create Date: 2026-11-30 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "20261130_0023"
down_revision: str | None = "20261130_0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
