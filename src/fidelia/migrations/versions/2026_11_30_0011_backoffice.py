"""backoffice: back-office users, roles, sessions, login throttling and the audit log

Revision ID: 20261130_0011
Revises: 20261130_0010
Create Date: 2026-11-30 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "20261130_0011"
down_revision: str | None = "20261130_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
