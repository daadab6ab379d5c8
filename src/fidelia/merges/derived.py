"""After a merge or an unmerge: both members' traits and segment memberships, recomputed in
the same transaction.

Design note
-----------
A merge moves the duplicate's events to the survivor (and an unmerge moves them back), so
what is derived from the events is stale for both members. :func:`recompute` rebuilds their
``member_traits`` rows from their events with the traits rebuild's own queries (one chunk per
member: ``lo = hi = member``), keeping the programme-wide scores (RFM, last redemption) the
daily refresh owns, then re-evaluates every segment of the programme for the two members
(``segments.live.evaluate_members``, cause ``merge``): one SELECT, writes only for who enters
or leaves. Two members, a handful of statements each: not a hot path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from fidelia.models import Programme
from fidelia.segments import live
from fidelia.segments import service as segments
from fidelia.traits import compute as c
from fidelia.traits import rebuild, sql
from fidelia.traits import service as traits


def _traits(session: Session, programme: Programme, ids: list[uuid.UUID], now: datetime) -> None:
    compiled = traits.section_for(session, programme)
    dialect = sql.dialect(session.get_bind().dialect.name)
    since = c.window_start(now.astimezone(UTC).date(), compiled.section.longest)
    rows = []
    for mid in ids:
        params: dict[str, Any] = {"programme_id": programme.id, "lo": mid, "hi": mid}
        params["since"] = since.isoformat() if dialect is sql.SQLITE else since
        figs, gaps = rebuild._figures(session, compiled, params, dialect, [mid])
        old = traits.traits_row(session, member_id=mid)
        row = traits.build_row(
            compiled,
            figs.get(mid) or c.Figures(),
            member_id=mid,
            programme_id=programme.id,
            now=now,
            kept={k: old[k] for k in traits.KEPT} if old is not None else None,
        )
        if mid in gaps:
            _, total, n, median, last_gap = gaps[mid]
            row["interval_mean_days"] = round(int(total) / int(n) / c.DAY, 6)
            row["interval_median_days"] = round(float(median) / c.DAY, 6)
            row["last_interval_days"] = round(int(last_gap) / c.DAY, 6)
        rows.append(row)
    for statement in sql.UNSTAGE:
        session.execute(text(statement))
    traits.upsert(session, rows)


def recompute(
    session: Session, *, programme: Programme, member_ids: Iterable[uuid.UUID], now: datetime
) -> None:
    """Rebuild the members' traits from their events, then re-evaluate their segments."""
    ids = sorted(set(member_ids))
    _traits(session, programme, ids, now)
    section = segments.section_for(session, programme)
    if section is None or not section.definitions:
        return
    live.evaluate_members(
        session,
        programme=programme,
        segments=section.definitions,
        catalogue=segments.catalogue_for(session, programme),
        member_ids=ids,
        now=now,
        cause="merge",
    )
