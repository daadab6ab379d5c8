"""Right of access: everything Fidelia holds about one member, as one JSON document.

The tables are found from the schema, not listed by hand: every table with a column that
references ``members.id`` (direct rows), and every table that references one of those (their
children: ledger entries and lots of the member's accounts and transactions, a message's
delivery log, a merge's items). A table another domain adds later is exported without a change
here (a table declared in the models but not yet migrated is skipped). Columns that hold
secrets (digests, tokens, passwords) are left out.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Column, ColumnElement, Table, inspect, or_, select
from sqlalchemy.orm import Session

from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.models import Base, Member, Programme

FORMAT = "fidelia.member-export/1"
SECRET_MARKERS = ("digest", "secret", "password", "token")


def export_member(
    session: Session, *, programme: Programme, member_id: uuid.UUID
) -> dict[str, Any]:
    """Everything held about the member: the profile and, per table, the member's rows (oldest
    first, by primary key). Raises ``NotFound`` for a member not in ``programme``."""
    member = members.get(session, programme=programme, member_id=member_id)
    data: dict[str, list[dict[str, Any]]] = {}
    existing = set(inspect(session.connection()).get_table_names())
    direct = {t: cols for t, cols in member_tables().items() if t.name in existing}
    for table, columns in direct.items():
        where = [or_(*(col == member.id for col in columns))]
        if "programme_id" in table.c:
            where.append(table.c.programme_id == programme.id)
        data[table.name] = _rows(session, table, where)
    for table, links in child_tables(direct).items():
        if table.name not in existing:
            continue
        conditions = [
            col.in_(select(parent.c.id).where(or_(*(c == member.id for c in direct[parent]))))
            for col, parent in links
        ]
        data[table.name] = _rows(session, table, [or_(*conditions)])
    return {
        "format": FORMAT,
        "exported_at": _json(utcnow()),
        "programme": {"id": str(programme.id), "slug": programme.slug, "name": programme.name},
        "member": _row(cast(Table, Member.__table__), _one(session, member)),
        "data": data,
    }


def member_tables() -> dict[Table, list[Column[Any]]]:
    """Tables with a column referencing ``members.id`` (or named ``member_id``), with those
    columns."""
    found: dict[Table, list[Column[Any]]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name == "members":
            continue
        columns = [
            col
            for col in table.columns
            if col.name == "member_id"
            or any(fk.column.table.name == "members" for fk in col.foreign_keys)
        ]
        if columns:
            found[table] = columns
    return found


def child_tables(
    direct: dict[Table, list[Column[Any]]],
) -> dict[Table, list[tuple[Column[Any], Table]]]:
    """Tables without a member column that reference a table of ``direct`` by its ``id``."""
    found: dict[Table, list[tuple[Column[Any], Table]]] = {}
    for table in Base.metadata.sorted_tables:
        if table in direct or table.name == "members":
            continue
        for col in table.columns:
            for fk in col.foreign_keys:
                parent = fk.column.table
                if parent in direct and fk.column.name == "id" and "id" in parent.c:
                    found.setdefault(table, []).append((col, parent))
    return found


def _one(session: Session, member: Member) -> Any:
    table = cast(Table, Member.__table__)
    return session.execute(select(table).where(table.c.id == member.id)).one()


def _rows(session: Session, table: Table, where: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    order = list(table.primary_key.columns)
    result = session.execute(select(table).where(*where).order_by(*order))
    return [_row(table, row) for row in result]


def _row(table: Table, row: Any) -> dict[str, Any]:
    mapping = row._mapping
    return {
        col.name: _json(mapping[col])
        for col in table.columns
        if not any(marker in col.name for marker in SECRET_MARKERS)
    }


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value
