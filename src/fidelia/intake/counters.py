"""Programme-wide rule counters (budgets, first-N members) without a programme-wide lock.

Design note
-----------
A rule with a budget or a first-N limit reads how much of it the whole programme has used.
Locking those rows on every event made every purchase of a programme queue on them, and
creating them lazily let two first purchases lock different sets and deadlock.

Now a run reads the counters without a lock (optimistic) and, at the end, writes only the
counters of rules that fired, each as a compare-and-set on the values it read (rows in rule-id
order; a missing row is inserted, ignoring a conflict). If any compare-and-set finds the row
changed by another transaction, :class:`CountersMoved` is raised: the caller rolls back its
savepoint and runs again *pessimistically*: every counter row of the programme's limited rules
is created if missing, then all are locked in rule-id order before the first evaluation. Caps
stay exact (a write never rests on a stale read), purchases that fire no limited rule touch no
counter row, and the retry takes the locks in one fixed order, so it cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fidelia.kit.prepared import Prepared
from fidelia.models import RuleCounter
from fidelia.rules.state import ProgrammeCounters

_COUNTERS = (
    select(RuleCounter.rule_id, RuleCounter.issued, RuleCounter.members)
    .where(RuleCounter.programme_id == bindparam("programme_id"))
    .order_by(RuleCounter.rule_id)
)
_READ, _LOCKED = Prepared(_COUNTERS), Prepared(_COUNTERS.with_for_update())  # kit.prepared


class CountersMoved(Exception):
    """Another transaction changed a counter this run read: run again with the locks."""


@dataclass
class CounterBook:
    """The counters of the programme's limited rules, as read, and as this run moves them."""

    session: Session
    programme_id: uuid.UUID
    rule_ids: tuple[str, ...]
    locked: bool = False
    counters: ProgrammeCounters = field(default_factory=ProgrammeCounters)
    read: dict[str, tuple[str, int]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)

    @classmethod
    def load(
        cls, session: Session, programme_id: uuid.UUID, rule_ids: Iterable[str], *, locked: bool
    ) -> CounterBook:
        """Read the counters; ``locked``: create missing rows, then lock all in rule-id order."""
        book = cls(session, programme_id, tuple(sorted(set(rule_ids))), locked)
        if locked:
            book._insert_missing(book.rule_ids)
        query = _LOCKED if locked else _READ
        for rule_id, issued, members in query.rows(session, {"programme_id": programme_id}):
            book.read[rule_id] = (issued, members)
            book.counters.issued[rule_id] = Decimal(issued)
            book.counters.members[rule_id] = members
        return book

    def write(self) -> None:
        """Write the counters of the rules that fired; :class:`CountersMoved` if one moved."""
        for rule_id in sorted(self.touched):
            issued = str(self.counters.issued.get(rule_id, 0))
            members = self.counters.members.get(rule_id, 0)
            before = self.read.get(rule_id)
            if before is None:
                if not self._insert_missing([rule_id], issued=issued, members=members):
                    raise CountersMoved(rule_id)
            elif not self._compare_and_set(rule_id, before, issued, members):
                raise CountersMoved(rule_id)
            self.read[rule_id] = (issued, members)
        self.touched.clear()

    def _compare_and_set(
        self, rule_id: str, before: tuple[str, int], issued: str, members: int
    ) -> bool:
        result = self.session.execute(
            update(RuleCounter)
            .where(
                RuleCounter.programme_id == self.programme_id,
                RuleCounter.rule_id == rule_id,
                RuleCounter.issued == before[0],
                RuleCounter.members == before[1],
            )
            .values(issued=issued, members=members)
            .returning(RuleCounter.rule_id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    def _insert_missing(
        self, rule_ids: Iterable[str], *, issued: str = "0", members: int = 0
    ) -> int:
        rows = [
            {"programme_id": self.programme_id, "rule_id": r, "issued": issued, "members": members}
            for r in rule_ids
        ]
        if not rows:
            return 0
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(RuleCounter).values(rows).on_conflict_do_nothing()
        # Count the rows RETURNING gives back: rowcount is not reliable for multi-row inserts.
        return len(self.session.execute(statement.returning(RuleCounter.rule_id)).all())
