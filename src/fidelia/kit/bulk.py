"""Set-based writes: many rows of one table in one statement.

``session.execute(insert(table), rows)`` is a DBAPI ``executemany``: psycopg pipelines it but
the server still runs one INSERT per row. Asking for ``RETURNING`` makes SQLAlchemy batch the
rows into multi-row ``INSERT ... VALUES (...), (...)`` statements (its "insertmanyvalues"
mode, up to 1,000 rows each) on both engines, compiled once per table whatever the number of
rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (complete, all with the same keys) into ``table`` in the caller's
    transaction, as few multi-row INSERTs as possible."""
    if not rows:
        return
    if len(rows) == 1:
        session.execute(insert(table), rows[0])
        return
    key = next(iter(table.primary_key.columns))
    session.execute(insert(table).returning(key), list(rows))
