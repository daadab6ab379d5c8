"""back-office at 100,000 members (issue 12)

The members search and the in-store lookup find a member by any normalised identity (card,
email, phone, external id) without knowing its kind: an index on (programme_id, value), the
unique (programme_id, kind, namespace, value) one needing the kind first.

Revision ID: 20261130_0028
Revises: 20261130_0027
Create Date: 2026-11-30 20:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261130_0028"
down_revision: str | None = "20261130_0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_member_identities_programme_id_value", "member_identities", ["programme_id", "value"]
    )


def downgrade() -> None:
    op.drop_index("ix_member_identities_programme_id_value", table_name="member_identities")
