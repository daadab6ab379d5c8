"""GDPR erasure records, rate-limit buckets, API key expiry, last use and rotation (issue 16)

The event log and the consent history accept one more change: the personal fields of a row
(an event's ``properties``, a consent change's ``source``) may be rewritten for a member who
has an erasure record (``member_erasures``), and nothing else of the row. The merge exception
of migration 0007 stays as it was.

Revision ID: 20261130_0014
Revises: 20261130_0013
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0014"
down_revision: str | None = "20261130_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The personal column of each append-only table an erasure may rewrite.
ERASABLE = {"events": "properties", "consent_changes": "source"}
# As in migration 0007: a row's member may move along a merge of the two members.
_ALONG_A_MERGE = (
    "EXISTS (SELECT 1 FROM member_merges m WHERE "
    "(m.survivor_id = NEW.member_id AND m.duplicate_id = OLD.member_id AND m.status = 'merged') "
    "OR (m.survivor_id = OLD.member_id AND m.duplicate_id = NEW.member_id "
    "AND m.status = 'unmerged'))"
)
_ERASED = "EXISTS (SELECT 1 FROM member_erasures e WHERE e.member_id = OLD.member_id)"


def _columns(table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)]


def upgrade() -> None:
    op.create_table(
        "member_erasures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_erasures_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_member_erasures_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_erasures")),
        sa.UniqueConstraint("member_id", name=op.f("uq_member_erasures_member_id")),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("route_class", sa.String(length=16), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_rate_buckets_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "route_class", name=op.f("pk_rate_buckets")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_used_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("replaced_by_id", sa.Uuid(), nullable=True))
    _erasable()


def _erasable() -> None:
    if op.get_bind().dialect.name == "postgresql":
        personal = " - ".join(f"'{c}'" for c in ERASABLE.values())
        op.execute(
            f"""
            CREATE FUNCTION fidelia_append_only_but_merges_and_erasures() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' THEN
                IF (to_jsonb(NEW) - 'member_id') = (to_jsonb(OLD) - 'member_id')
                   AND {_ALONG_A_MERGE} THEN
                  RETURN NEW;
                END IF;
                IF NEW.member_id = OLD.member_id
                   AND (to_jsonb(NEW) - {personal}) = (to_jsonb(OLD) - {personal})
                   AND {_ERASED} THEN
                  RETURN NEW;
                END IF;
              END IF;
              RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
            END $$
            """
        )
        for table in ERASABLE:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fidelia_append_only_but_merges_and_erasures()"
            )
        return
    for table, column in ERASABLE.items():
        others = ", ".join(c for c in _columns(table) if c not in ("member_id", column))
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {others} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_erasure BEFORE UPDATE OF {column} ON {table} "
            f"WHEN NOT {_ERASED} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def _merges_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ERASABLE:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fidelia_append_only_but_merges()"
            )
        op.execute("DROP FUNCTION fidelia_append_only_but_merges_and_erasures()")
        return
    for table in ERASABLE:
        others = ", ".join(c for c in _columns(table) if c != "member_id")
        op.execute(f"DROP TRIGGER {table}_erasure")
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {others} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def downgrade() -> None:
    _merges_only()
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("replaced_by_id")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
    op.drop_table("rate_buckets")
    op.drop_table("member_erasures")
