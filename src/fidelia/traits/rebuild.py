"""Bulk recompute of a programme's traits from its event log, and the daily refresh.

Design note
-----------
``rebuild`` replaces every ``member_traits`` row of a programme with set-based SQL: it walks the
members in chunks of ``chunk`` ids and, for each chunk, runs one ``INSERT INTO member_traits
SELECT ...`` (:func:`fidelia.traits.sql.chunk_select`) that groups the chunk's purchases and
builds every column in the database, JSON ones included (``jsonb_object_agg`` /
``json_group_object``), with the lifecycle stage as a ``CASE`` of the document's conditions
(:mod:`fidelia.traits.stages`). Then one ``UPDATE`` ranks the RFM scores and names the cells of
the whole programme, and, only when a stage reads the scores, one more ``UPDATE`` of the stages.
No row passes through Python (a stage condition that cannot be compiled exactly is the
exception: those stages are then evaluated in Python, one pass over the rows).

``refresh`` is what the daily job runs: the same RFM ``UPDATE``, the last redemption in one
``UPDATE``, then one pass over the rows that re-derives the windows of rows whose day is past
and re-evaluates the lifecycle stage, writing only the rows that changed.
"""

from __future__ import annotations

import logging
import queue
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Table,
    bindparam,
    cast,
    delete,
    func,
    insert,
    null,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fidelia.models import Member, MemberTraits, Programme, Redemption
from fidelia.traits import compute as c
from fidelia.traits import sql
from fidelia.traits.fields import SqlContext
from fidelia.traits.service import KEPT, Compiled, section_for
from fidelia.traits.service import TABLE as TRAITS
from fidelia.traits.stages import stage_case

log = logging.getLogger(__name__)

CHUNK = 20_000
WORKERS = 2  # connections building chunks at once on PostgreSQL (the machine has 2 cores)


@dataclass(frozen=True, slots=True)
class RebuildResult:
    members: int
    purchasers: int


def _chunks(session: Session, programme_id: uuid.UUID, size: int) -> Iterator[list[uuid.UUID]]:
    ids = session.scalars(
        select(Member.id).where(Member.programme_id == programme_id).order_by(Member.id)
    ).all()
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


# PostgreSQL, for the rebuild's statements only (restored after): no JIT (the planner costs a
# chunk's statement in millions, above jit_optimize_above_cost, and compiling it with LLVM took
# longer than running it: 10 s of 21 s for 5,000 members), room for a chunk's sorts in memory,
# and groupings by sorting, not hashing: the affinities' four groupings (per purchase and
# value, value, dimension, member) share one sort order and stream, where hash tables of
# numeric and string_agg states spilled (chunk CPU 15.0 -> 12.3 s, docs/benchmarks.md).
SETTINGS = {"jit": "off", "work_mem": "64MB", "enable_hashagg": "off"}


@contextmanager
def _settings(session: Session) -> Iterator[None]:
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    before = {k: session.scalar(text("SELECT current_setting(:k)"), {"k": k}) for k in SETTINGS}
    for key, value in SETTINGS.items():
        session.execute(text("SELECT set_config(:k, :v, true)"), {"k": key, "v": value})
    yield
    for key, value in before.items():
        session.execute(text("SELECT set_config(:k, :v, true)"), {"k": key, "v": value})


def rebuild(
    session: Session,
    *,
    programme: Programme,
    now: datetime,
    chunk: int = CHUNK,
    workers: int = WORKERS,
) -> RebuildResult:
    """Recompute every trait of the programme's members from their events (see the note).
    ``workers`` connections build the chunks on PostgreSQL (SQLite: this session alone)."""
    with _settings(session):
        return _rebuild(session, programme, now, chunk, workers)


def _bounds(
    session: Session, programme_id: uuid.UUID, size: int
) -> tuple[int, list[tuple[Any, Any]]]:
    """How many members, and the first and last id of each chunk of ``size`` of them."""
    chunks = list(_chunks(session, programme_id, size))
    return sum(len(ids) for ids in chunks), [(ids[0], ids[-1]) for ids in chunks]


def _typed(statement: str) -> Any:
    """``text`` with the types of the parameters it names (ids, day, instant)."""
    uid = Member.__table__.c.id.type
    types = {"programme_id": uid, "lo": uid, "hi": uid, "today": Date(),
             "now": TRAITS.c.computed_at.type}  # fmt: skip
    return text(statement).bindparams(
        *(bindparam(k, type_=t) for k, t in types.items() if f":{k}" in statement)
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every connection building chunks runs: its staging, and the chunk's insert into
    the rebuild's table of rows (``insert``, with ``params``)."""

    staging: sql.Staging
    insert: str
    params: dict[str, Any]

    def setup(self, conn: Connection) -> None:
        for step in self.staging.setup:
            conn.execute(text(step))

    def run(self, conn: Connection, lo: Any, hi: Any, *, first: bool) -> None:
        """Stage and build the chunk ``[lo, hi]``; ``first``: the connection's first chunk."""
        keys = {**self.params, "lo": lo, "hi": hi}
        for step in self.staging.chunk:
            if ":lo" in step:
                conn.execute(_typed(step), {k: keys[k] for k in ("programme_id", "lo", "hi")}
                             | self.staging.params)  # fmt: skip
            else:
                conn.execute(text(step))
        for step in self.staging.analyse if first else ():
            conn.execute(text(step))
        conn.execute(_typed(self.insert), keys)

    def teardown(self, conn: Connection) -> None:
        for step in sql.UNSTAGE:
            conn.execute(text(step))


def _plan(name: str, compiled: Compiled, programme_id: uuid.UUID, now: datetime,
          table: str) -> _Plan:  # fmt: skip
    today = now.astimezone(UTC).date()
    d = sql.dialect(name)
    query, params = sql.chunk_select(d, compiled.section, today)
    params.update(today=today, now=now, programme_id=programme_id)
    insert_sql = f"INSERT INTO {table} ({', '.join(sql.COLUMNS)}) {query}"
    return _Plan(sql.stage(d, compiled.section), insert_sql, params)


def _rebuild(
    session: Session, programme: Programme, now: datetime, chunk: int, workers: int
) -> RebuildResult:
    compiled = section_for(session, programme)
    name = session.get_bind().dialect.name
    members, bounds = _bounds(session, programme.id, chunk)
    bind = session.get_bind()
    if name == "postgresql" and workers > 1 and len(bounds) > 1 and isinstance(bind, Engine):
        with _shared_table(session, bind) as table:
            plan = _plan(name, compiled, programme.id, now, table)
            _build_in_parallel(session, bind, plan, bounds, workers)
            _write(session, compiled, programme.id, now, table)
    else:
        table = "traits_rows"
        plan = _plan(name, compiled, programme.id, now, table)
        conn = session.connection()
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text(_create_rows(name, table, temporary=True)))
        plan.setup(conn)
        for i, (lo, hi) in enumerate(bounds):
            plan.run(conn, lo, hi, first=i == 0)
        plan.teardown(conn)
        _write(session, compiled, programme.id, now, table)
        conn.execute(text(f"DROP TABLE {table}"))
    purchasers = session.scalar(
        select(func.count()).where(
            TRAITS.c.programme_id == programme.id, TRAITS.c.purchases_count > 0
        )
    )
    if stage_case(compiled.section, SqlContext(TRAITS, now, name)) is None:
        _stages(session, compiled, programme.id, now)
    return RebuildResult(members=members, purchasers=int(purchasers or 0))


def _create_rows(name: str, table: str, *, temporary: bool) -> str:
    """The table of a rebuild's rows before their scores: PostgreSQL copies the column types
    of ``member_traits``; SQLite's columns have no declared type, so nothing is converted
    (a declared numeric affinity would turn a UUID's hex made of digits into a number)."""
    if name == "postgresql":
        kind = "TEMPORARY" if temporary else "UNLOGGED"
        cols = ", ".join(sql.COLUMNS)
        return f"CREATE {kind} TABLE {table} AS SELECT {cols} FROM member_traits WITH NO DATA"
    return f"CREATE TEMPORARY TABLE {table} ({', '.join(sql.COLUMNS)})"


@contextmanager
def _shared_table(session: Session, engine: Engine) -> Iterator[str]:
    """An unlogged table the workers' connections write and this session reads (it is no
    temporary table: those are private to one connection).

    Once read, the session's transaction holds a lock on it until it ends, so the table is
    dropped by that transaction (gone when it commits): a DROP from another connection would
    wait for a commit that cannot come before the rebuild returns. When the rebuild fails,
    another connection drops it if it can within a few seconds; a table it cannot drop then
    is left (its name says what it was) rather than waited for."""
    table = f"traits_rebuild_{uuid.uuid4().hex[:16]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(_create_rows("postgresql", table, temporary=False)))
    try:
        yield table
    except BaseException:
        try:
            with engine.begin() as conn:  # SET LOCAL: the pooled connection keeps no timeout
                conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        except SQLAlchemyError:
            log.warning("traits rebuild: could not drop %s after a failure", table)
        raise
    session.execute(text(f"DROP TABLE {table}"))


def _build_in_parallel(
    session: Session, engine: Engine, plan: _Plan, bounds: list[tuple[Any, Any]], workers: int
) -> None:
    """Chunks built by ``workers`` connections at once, each reading the snapshot of this
    session's transaction (``pg_export_snapshot``), so the rebuild reads one state of the
    event log however long it takes, as a single connection would."""
    snapshot = str(session.scalar(text("SELECT pg_export_snapshot()")))
    if not all(ch.isalnum() or ch == "-" for ch in snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    todo: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
    for b in bounds:
        todo.put(b)

    def work() -> None:
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            for key, value in SETTINGS.items():
                conn.execute(text("SELECT set_config(:k, :v, true)"), {"k": key, "v": value})
            plan.setup(conn)
            first = True
            while True:
                try:
                    lo, hi = todo.get_nowait()
                except queue.Empty:
                    break
                plan.run(conn, lo, hi, first=first)
                first = False
            plan.teardown(conn)

    with ThreadPoolExecutor(max_workers=min(workers, len(bounds))) as pool:
        for future in [pool.submit(work) for _ in range(min(workers, len(bounds)))]:
            future.result()


def _write(
    session: Session, compiled: Compiled, programme_id: uuid.UUID, now: datetime, table: str
) -> None:
    """Replace the programme's rows by the built ones, each written once with its RFM scores,
    cell and lifecycle stage (the stage may read the scores)."""
    rfm = compiled.section.rfm
    cells = [(cl.id, (*cl.r, *cl.f, *cl.m)) for cl in rfm.cells] if rfm is not None else []
    name = session.get_bind().dialect.name
    ranked = (
        text(sql.ranked(table, cells))  # type: ignore[arg-type]
        .bindparams(*(bindparam(f"cell{i}", cid) for i, (cid, _) in enumerate(cells)))
        .columns(*(TRAITS.c[col] for col in sql.COLUMNS))
        .subquery("y")
    )
    stage = stage_case(compiled.section, SqlContext(ranked, now, name))
    rows = select(
        *ranked.c,
        (stage if stage is not None else cast(null(), TRAITS.c.lifecycle_stage.type)).label(
            "lifecycle_stage"
        ),
    )
    session.execute(delete(MemberTraits).where(MemberTraits.programme_id == programme_id))
    session.execute(insert(TRAITS).from_select([*sql.COLUMNS, "lifecycle_stage"], rows))


def recompute_members(
    session: Session, *, programme: Programme, member_ids: Iterable[uuid.UUID], now: datetime
) -> None:
    """Rebuild some members' rows from their events (after a merge or an unmerge), keeping the
    programme-wide figures the daily refresh owns (RFM, last redemption, CLV)."""
    compiled = section_for(session, programme)
    name = session.get_bind().dialect.name
    ids = sorted(set(member_ids))
    table = "traits_rows"
    plan = _plan(name, compiled, programme.id, now, table)
    kept = {*KEPT, "member_id"}
    with _settings(session):
        conn = session.connection()
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text(_create_rows(name, table, temporary=True)))
        plan.setup(conn)
        for i, mid in enumerate(ids):
            plan.run(conn, mid, mid, first=i == 0)
        plan.teardown(conn)
        rows = (
            text(f"SELECT {', '.join(sql.COLUMNS)} FROM {table}")
            .columns(*(TRAITS.c[col] for col in sql.COLUMNS))
            .subquery("x")
        )
        stage = stage_case(compiled.section, SqlContext(rows, now, name))
        chosen = select(
            *rows.c,
            (stage if stage is not None else cast(null(), TRAITS.c.lifecycle_stage.type)).label(
                "lifecycle_stage"
            ),
        ).where(true())
        ins = (postgresql.insert if name == "postgresql" else sqlite.insert)(TRAITS)
        ins = ins.from_select([*sql.COLUMNS, "lifecycle_stage"], chosen)
        session.execute(
            ins.on_conflict_do_update(
                index_elements=["member_id"],
                set_={col.name: ins.excluded[col.name] for col in TRAITS.c if col.name not in kept},
            )
        )
        conn.execute(text(f"DROP TABLE {table}"))
    if compiled.reads_scores or stage_case(compiled.section, SqlContext(TRAITS, now, name)) is None:
        _stages(session, compiled, programme.id, now, ids)


def _stages(
    session: Session,
    compiled: Compiled,
    programme_id: uuid.UUID,
    now: datetime,
    member_ids: list[uuid.UUID] | None = None,
) -> None:
    """Every (or some) member's lifecycle stage from the stored row: one ``UPDATE`` when the
    stages compile to SQL, else a pass in Python writing the rows whose stage changed."""
    t = TRAITS
    where = [t.c.programme_id == programme_id]
    if member_ids is not None:
        where.append(t.c.member_id.in_(member_ids))
    stage = stage_case(compiled.section, SqlContext(t, now, session.get_bind().dialect.name))
    if stage is not None:
        session.execute(update(t).where(*where).values(lifecycle_stage=stage))
        return
    changed = []
    for row in session.execute(select(t).where(*where)).mappings():
        found = compiled.stage_of(dict(row), now)
        if found != row["lifecycle_stage"]:
            changed.append({"id": row["member_id"], "stage": found})
    if changed:
        session.connection().execute(
            update(t)
            .where(t.c.member_id == bindparam("id"))
            .values(lifecycle_stage=bindparam("stage")),
            changed,
        )


def _score(session: Session, compiled: Compiled, programme_id: uuid.UUID) -> None:
    """RFM scores and cells of the whole programme, one ``UPDATE``."""
    rfm = compiled.section.rfm
    cells = [(cl.id, (*cl.r, *cl.f, *cl.m)) for cl in rfm.cells] if rfm is not None else []
    params: dict[str, Any] = {"programme_id": programme_id}
    params.update({f"cell{i}": cid for i, (cid, _) in enumerate(cells)})
    pid_type = bindparam("programme_id", type_=Member.__table__.c.id.type)
    statement = sql.rfm(session.get_bind().dialect.name, cells)  # type: ignore[arg-type]
    session.execute(text(statement).bindparams(pid_type), params)


def refresh(
    session: Session,
    *,
    programme: Programme,
    now: datetime,
    compiled: Compiled | None = None,
    fresh: bool = False,
) -> int:
    """The daily step: RFM scores and cells, last redemption, windows and lifecycle stages as of
    ``now``. Returns how many rows the pass over them changed."""
    compiled = compiled or section_for(session, programme)
    _score(session, compiled, programme.id)
    last = (
        select(Redemption.requested_at)
        .where(Redemption.member_id == MemberTraits.member_id)
        .order_by(Redemption.requested_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    session.execute(
        update(MemberTraits)
        .where(MemberTraits.programme_id == programme.id)
        .values(last_redemption_at=last)
        .execution_options(synchronize_session=False)
    )
    if fresh and not compiled.reads_scores:
        return 0  # the rows were built today and their stages read no score set since
    return _restage(session, compiled, programme.id, now)


def _restage(session: Session, compiled: Compiled, programme_id: uuid.UUID, now: datetime) -> int:
    """Re-derive stale windows and every lifecycle stage; write the rows that changed."""
    today: date = now.astimezone(UTC).date()
    section = compiled.section
    changed: list[dict[str, Any]] = []
    result = session.execute(
        select(TRAITS).where(TRAITS.c.programme_id == programme_id),
        execution_options={"stream_results": True, "yield_per": 5000},
    ).mappings()
    for row in result:
        new = dict(row)
        if row["windows_on"] != today:
            new["days"] = c.prune(row["days"], section, today)
            new["windows"] = c.windows(new["days"], section, today)
            new["windows_on"] = today
        new["lifecycle_stage"] = compiled.stage_of(new, now)
        if (
            new["lifecycle_stage"] != row["lifecycle_stage"]
            or new["windows_on"] != row["windows_on"]
        ):
            changed.append(
                {
                    "id": row["member_id"],
                    "stage": new["lifecycle_stage"],
                    "days": new["days"],
                    "windows": new["windows"],
                    "on": today,
                }
            )
    _write_stages(session, changed)
    return len(changed)


def _write_stages(session: Session, changed: list[dict[str, Any]]) -> None:
    if not changed:
        return
    t: Table = TRAITS
    stmt = (
        update(t)
        .where(t.c.member_id == bindparam("id"))
        .values(
            lifecycle_stage=bindparam("stage"),
            days=bindparam("days"),
            windows=bindparam("windows"),
            windows_on=bindparam("on"),
        )
    )
    session.connection().execute(stmt, changed)


__all__ = ["KEPT", "RebuildResult", "rebuild", "refresh"]
