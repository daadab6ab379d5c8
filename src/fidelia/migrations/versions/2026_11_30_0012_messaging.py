"""messaging: templates, messages and their delivery log, inbox, contact pressure, surveys

Revision ID: 20261130_0012
Revises: 20261130_0011
Create Date: 2026-11-30 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "20261130_0012"
down_revision: str | None = "20261130_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
