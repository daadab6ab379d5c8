"""per-member event summaries for segments (issue 10)

``event_summaries``: per member, event type, category ('' for every event of the type) and
UTC day, the number of events and the last instant; segments count from it for a whole
population instead of aggregating ``events`` (fidelia.segments.summaries). Filled here from the
existing events (a frozen copy of the rebuild's statements); the intake keeps it afterwards.
``segment_baselines``: each segment's first evaluation (when, how many members).

Revision ID: 20261201_0030
Revises: 20261201_0029
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261201_0030"
down_revision: str | None = "20261201_0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FILL = """
INSERT INTO event_summaries (member_id, type, category, day, programme_id, n, last_at)
SELECT e.member_id, e.type, '', (e.occurred_at AT TIME ZONE 'UTC')::date, e.programme_id,
       count(*), max(e.occurred_at)
FROM events e
GROUP BY e.member_id, e.type, (e.occurred_at AT TIME ZONE 'UTC')::date, e.programme_id
UNION ALL
SELECT e.member_id, 'purchase', c.category, (e.occurred_at AT TIME ZONE 'UTC')::date,
       e.programme_id, count(*), max(e.occurred_at)
FROM events e CROSS JOIN LATERAL (
    SELECT DISTINCT l ->> 'category' AS category
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.properties -> 'lines') = 'array'
                                   THEN e.properties -> 'lines' ELSE '[]'::jsonb END) AS l
    WHERE jsonb_typeof(l -> 'category') = 'string' AND length(l ->> 'category') <= 100
) AS c
WHERE e.type = 'purchase'
GROUP BY e.member_id, c.category, (e.occurred_at AT TIME ZONE 'UTC')::date, e.programme_id
"""
_SQLITE_CATEGORY = (
    "CASE WHEN l.type = 'object' THEN CASE WHEN json_type(l.value, '$.category') = 'text' "
    "THEN json_extract(l.value, '$.category') END END"
)
_SQLITE_FILL = """
INSERT INTO event_summaries (member_id, type, category, day, programme_id, n, last_at)
SELECT e.member_id, e.type, '', date(e.occurred_at), e.programme_id, count(*), max(e.occurred_at)
FROM events e
GROUP BY e.member_id, e.type, date(e.occurred_at), e.programme_id
UNION ALL
SELECT e.member_id, 'purchase', CATEGORY, date(e.occurred_at), e.programme_id,
       count(DISTINCT e.id), max(e.occurred_at)
FROM events e, json_each(CASE WHEN json_type(e.properties, '$.lines') = 'array'
                              THEN json_extract(e.properties, '$.lines') ELSE '[]' END) AS l
WHERE e.type = 'purchase' AND length(CATEGORY) <= 100
GROUP BY e.member_id, CATEGORY, date(e.occurred_at), e.programme_id
""".replace("CATEGORY", _SQLITE_CATEGORY)


def _fks(table: str, member: bool = True) -> list[sa.ForeignKeyConstraint]:
    out = [
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f(f"fk_{table}_programme_id_programmes"),
            ondelete="CASCADE",
        )
    ]
    if member:
        out.append(
            sa.ForeignKeyConstraint(
                ["member_id"],
                ["members.id"],
                name=op.f(f"fk_{table}_member_id_members"),
                ondelete="CASCADE",
            )
        )
    return out


def upgrade() -> None:
    op.create_table(
        "event_summaries",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("last_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        *_fks("event_summaries"),
        sa.PrimaryKeyConstraint(
            "member_id", "type", "category", "day", name=op.f("pk_event_summaries")
        ),
    )
    op.create_table(
        "segment_baselines",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        *_fks("segment_baselines", member=False),
        sa.PrimaryKeyConstraint("programme_id", "segment", name=op.f("pk_segment_baselines")),
    )
    pg = op.get_bind().dialect.name == "postgresql"
    op.execute(sa.text(_PG_FILL if pg else _SQLITE_FILL))
    # after the fill: one sorted build instead of as many inserts into the index
    op.create_index(
        "ix_event_summaries_programme_id_type_category_day",
        "event_summaries",
        ["programme_id", "type", "category", "day"],
        postgresql_include=["member_id", "n", "last_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_event_summaries_programme_id_type_category_day", "event_summaries")
    op.drop_table("segment_baselines")
    op.drop_table("event_summaries")
