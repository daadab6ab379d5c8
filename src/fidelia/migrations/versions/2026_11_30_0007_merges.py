"""merges: member merges (identity resolution), filled in by the merges domain

``member_merges`` and ``member_merge_items``; the event log and the consent history accept one
change: their ``member_id`` may move along a recorded merge (from the duplicate to the
survivor while the merge stands, back once it is undone). Everything else stays refused.

Revision ID: 20261130_0007
Revises: 20261130_0006
Create Date: 2026-11-30 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0007"
down_revision: str | None = "20261130_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVABLE = ("events", "consent_changes")
# A row's member may change only along a merge of these two members: to the survivor while
# the merge stands, back to the duplicate once it is undone.
_ALONG_A_MERGE = (
    "EXISTS (SELECT 1 FROM member_merges m WHERE "
    "(m.survivor_id = NEW.member_id AND m.duplicate_id = OLD.member_id AND m.status = 'merged') "
    "OR (m.survivor_id = OLD.member_id AND m.duplicate_id = NEW.member_id "
    "AND m.status = 'unmerged'))"
)


def _columns(table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)]


def upgrade() -> None:
    op.create_table(
        "member_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=False),
        sa.Column("duplicate_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("merged_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("unmerged_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unmerged_by", sa.String(length=200), nullable=True),
        sa.Column(
            "unmerge_report",
            sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "status IN ('merged', 'unmerged')", name=op.f("ck_member_merges_status")
        ),
        sa.CheckConstraint(
            "survivor_id <> duplicate_id", name=op.f("ck_member_merges_two_members")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_id"],
            ["members.id"],
            name=op.f("fk_member_merges_duplicate_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_member_merges_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"],
            ["members.id"],
            name=op.f("fk_member_merges_survivor_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_merges")),
    )
    with op.batch_alter_table("member_merges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_merges_duplicate_id_survivor_id", ["duplicate_id", "survivor_id"]
        )
        batch_op.create_index(
            "ix_member_merges_survivor_id_merged_at", ["survivor_id", "merged_at"]
        )
    op.create_table(
        "member_merge_items",
        sa.Column("merge_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merge_id"],
            ["member_merges.id"],
            name=op.f("fk_member_merge_items_merge_id_member_merges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("merge_id", "kind", "item_id", name=op.f("pk_member_merge_items")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_programme_id_birth_date", ["programme_id", "birth_date"])
    _movable_member()


def _movable_member() -> None:
    """Replace the UPDATE half of the append-only triggers of ``MOVABLE``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION fidelia_append_only_but_merges() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE'
                 AND (to_jsonb(NEW) - 'member_id') = (to_jsonb(OLD) - 'member_id')
                 AND {_ALONG_A_MERGE} THEN
                RETURN NEW;
              END IF;
              RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
            END $$
            """
        )
        for table in MOVABLE:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fidelia_append_only_but_merges()"
            )
        return
    for table in MOVABLE:
        others = ", ".join(c for c in _columns(table) if c != "member_id")
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {others} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_member_moves BEFORE UPDATE OF member_id ON {table} "
            f"WHEN NOT {_ALONG_A_MERGE} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def _append_only_again() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in MOVABLE:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fidelia_append_only()"
            )
        op.execute("DROP FUNCTION fidelia_append_only_but_merges()")
        return
    for table in MOVABLE:
        op.execute(f"DROP TRIGGER {table}_member_moves")
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def downgrade() -> None:
    _append_only_again()
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_programme_id_birth_date")
    op.drop_table("member_merge_items")
    with op.batch_alter_table("member_merges", schema=None) as batch_op:
        batch_op.drop_index("ix_member_merges_survivor_id_merged_at")
        batch_op.drop_index("ix_member_merges_duplicate_id_survivor_id")
    op.drop_table("member_merges")
