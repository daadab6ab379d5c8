"""Bulk recompute of a programme's traits from its event log, and the daily refresh.

Design note
-----------
``rebuild`` replaces every ``member_traits`` row of a programme. It walks the members in chunks
of ``chunk`` ids; for each chunk the database groups the purchases (:mod:`fidelia.traits.sql`:
per member, per day, per affinity value, per channel and store, intervals by ``LAG``/``ROW_NUMBER``)
and Python only assembles the JSON shapes and derives the ratios with the same
:func:`compute.derive` as the intake, then inserts the chunk's rows in one statement.

``refresh`` is what the daily job runs, and the rebuild's last step: RFM scores for the whole
programme in one ``UPDATE ... FROM`` ranking query, the named RFM cell in one ``UPDATE ... CASE``,
the last redemption in one ``UPDATE``, then one pass over the rows that re-derives the windows of
rows whose day is past and re-evaluates the lifecycle stage, writing only the rows that changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from fidelia.kit.bulk import insert_rows
from fidelia.models import Member, MemberTraits, Programme, Redemption
from fidelia.traits import compute as c
from fidelia.traits import sql
from fidelia.traits.service import KEPT, Compiled, build_row, section_for
from fidelia.traits.service import TABLE as TRAITS

CHUNK = 20_000


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


def _money(value: Any) -> Decimal:
    return c.money(Decimal(str(value)) if isinstance(value, float) else Decimal(value))


def _at(value: Any) -> datetime | None:
    """A timestamp from a raw query (ISO text on SQLite), aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _query(
    session: Session, statement: str, params: dict[str, Any], *, rows: bool = True
) -> Sequence[Any]:
    member_type = Member.__table__.c.id.type
    q = text(statement)
    if ":lo" in statement:
        q = q.bindparams(
            bindparam("lo", type_=member_type),
            bindparam("hi", type_=member_type),
            bindparam("programme_id", type_=member_type),
        )
    if not rows:
        session.execute(q, params)
        return ()
    return session.execute(q, params).all()


def _figures(
    session: Session,
    compiled: Compiled,
    params: dict[str, Any],
    dialect: sql.Dialect,
    chunk: list[uuid.UUID],
) -> tuple[dict[uuid.UUID, c.Figures], dict[uuid.UUID, tuple[Any, ...]]]:
    """The chunk's purchase figures, grouped by the database."""
    for statement in sql.stage(dialect):
        _query(session, statement, params, rows=False)
    figs: dict[uuid.UUID, c.Figures] = {}
    for r in _query(session, sql.members(dialect), params):
        figs[r.member_id] = c.Figures(
            purchases=r.purchases,
            spend=_money(r.spend),
            promo_purchases=int(r.promo_purchases),
            promo_spend=_money(r.promo_spend),
            first_at=_at(r.first_at),
            last_at=_at(r.last_at),
        )
    for r in _query(session, sql.days(dialect), params):
        figs[r.member_id].days[r.day] = [r.purchases, str(_money(r.spend))]
    for column in ("channel", "store"):
        for r in _query(session, sql.counts(dialect, column), params):
            getattr(figs[r.member_id], column + "s")[r.value] = r.purchases
    query, extra = sql.affinities(dialect, compiled.section)
    for r in _query(session, query, {**params, **extra}):
        cells = figs[r.member_id].affinities.setdefault(r.dim, {})
        cells[r.value] = [r.purchases, str(_money(r.spend))]
    for r in _query(session, sql.times(dialect), params):
        figs[r.member_id].times.append(int(r.at_s))
    gaps = {r.member_id: tuple(r) for r in _query(session, sql.intervals(dialect), params)}
    # Raw member ids (hex text on SQLite) become UUIDs once per member, not once per row.
    if dialect is sql.SQLITE:
        ids: dict[Any, uuid.UUID] = {m.hex: m for m in chunk}
        figs = {ids[k]: v for k, v in figs.items()}
        gaps = {ids[k]: v for k, v in gaps.items()}
    return figs, gaps


def rebuild(
    session: Session, *, programme: Programme, now: datetime, chunk: int = CHUNK
) -> RebuildResult:
    """Recompute every trait of the programme's members from their events (see the note)."""
    compiled = section_for(session, programme)
    dialect = sql.dialect(session.get_bind().dialect.name)
    since = c.window_start(now.astimezone(UTC).date(), compiled.section.longest)
    session.execute(delete(MemberTraits).where(MemberTraits.programme_id == programme.id))
    members = purchasers = 0
    for ids in _chunks(session, programme.id, chunk):
        params = {"programme_id": programme.id, "lo": ids[0], "hi": ids[-1], "since": since}
        if dialect is sql.SQLITE:
            params["since"] = since.isoformat()
        figs, gaps = _figures(session, compiled, params, dialect, ids)
        rows = []
        for mid in ids:
            fig = figs.get(mid) or c.Figures()
            row = build_row(
                compiled, fig, member_id=mid, programme_id=programme.id, now=now, kept=None
            )
            if mid in gaps:
                _, total, n, median, last_gap = gaps[mid]
                row["interval_mean_days"] = round(int(total) / int(n) / c.DAY, 6)
                row["interval_median_days"] = round(float(median) / c.DAY, 6)
                row["last_interval_days"] = round(int(last_gap) / c.DAY, 6)
            rows.append(row)
        insert_rows(session, TRAITS, rows)
        members += len(ids)
        purchasers += len(figs)
    for statement in sql.UNSTAGE:
        session.execute(text(statement))
    refresh(session, programme=programme, now=now, compiled=compiled, fresh=True)
    return RebuildResult(members=members, purchasers=purchasers)


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
    pid = {"programme_id": programme.id}
    pid_type = bindparam("programme_id", type_=Member.__table__.c.id.type)
    session.execute(text(sql.rfm(session.get_bind().dialect.name)).bindparams(pid_type), pid)
    _cells(session, compiled, programme.id)
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


def _cells(session: Session, compiled: Compiled, programme_id: uuid.UUID) -> None:
    rfm = compiled.section.rfm
    if rfm is None:
        return
    t = MemberTraits
    from sqlalchemy import and_, case

    cell = case(
        *(
            (
                and_(
                    t.rfm_r.between(cl.r[0], cl.r[1]),
                    t.rfm_f.between(cl.f[0], cl.f[1]),
                    t.rfm_m.between(cl.m[0], cl.m[1]),
                ),
                cl.id,
            )
            for cl in rfm.cells
        ),
        else_=None,
    )
    session.execute(
        update(t)
        .where(t.programme_id == programme_id)
        .values(rfm_cell=cell)
        .execution_options(synchronize_session=False)
    )


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
