"""Streaks: consecutive weeks or months with a qualifying event, rewarded at lengths.

Each member's run is one row per streak (``member_streaks``), read for the batch in one query
and moved in memory as events arrive: an event in the period after the last one extends the
run; a gap resets it to one unless the member has freezes left (one per missed period). An
event in a period already counted, or earlier than the last one, changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fidelia.engagement.service import event_context
from fidelia.engagement.streaks_schemas import StreakDef, StreakOut
from fidelia.kit.attach import attached
from fidelia.kit.prepared import Prepared
from fidelia.members import service as members
from fidelia.models import Programme
from fidelia.models.engagement_plus import MemberStreak

if TYPE_CHECKING:
    from fidelia.engagement.plus import PlusRun

_MONDAY = date(1970, 1, 5)


def period_index(at: datetime, period: str, tz: ZoneInfo) -> int:
    """The week (Monday to Sunday) or month ``at`` falls in, as a counter, in local time."""
    day = at.astimezone(tz).date()
    if period == "week":
        return (day - _MONDAY).days // 7
    return day.year * 12 + day.month - 1


def rows_for(
    session: Session, programme: Programme, member_ids: list[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], MemberStreak]:
    found: dict[tuple[uuid.UUID, str], MemberStreak] = {}
    for start in range(0, len(member_ids), 500):
        for values in _READ_ROWS.rows(session, {"members": member_ids[start : start + 500]}):
            row = attached(session, MemberStreak, values)
            found[(row.member_id, row.streak)] = row
    return found


_STREAKS = MemberStreak.__table__
_READ_ROWS = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(_STREAKS).where(_STREAKS.c.member_id.in_(bindparam("members", expanding=True)))
)


def extend(row: MemberStreak, streak: StreakDef, index: int) -> bool:
    """Count period ``index`` in the run; whether the run grew."""
    if index <= row.last:
        return False
    missed = index - row.last - 1
    if row.current > 0 and missed <= streak.freezes - row.freezes_used:
        row.current += 1
        row.freezes_used += missed
    else:
        row.current, row.started, row.freezes_used = 1, index, 0
    row.last = index
    row.best = max(row.best, row.current)
    return True


def after_event(
    run: PlusRun, member_id: uuid.UUID, event: Any, event_id: uuid.UUID
) -> list[dict[str, Any]]:
    from fidelia.engagement.plus import give

    effects: list[dict[str, Any]] = []
    ctx: dict[str, Any] | None = None
    for streak in run.defs.streaks.values():
        if streak.event_type != event.type:
            continue
        test = run.defs.streak_tests.get(streak.code)
        if test is not None:
            ctx = ctx or event_context(event)
            if not test(ctx):
                continue
        row = run.streaks.get((member_id, streak.code))
        if row is None:
            row = MemberStreak(
                member_id=member_id,
                streak=streak.code,
                programme_id=run.programme.id,
                current=0,
                best=0,
                started=0,
                last=-1,
                freezes_used=0,
            )
            run.session.add(row)
            run.streaks[(member_id, streak.code)] = row
        if not extend(row, streak, period_index(event.occurred_at, streak.period, run.defs.tz)):
            continue
        for gift in streak.rewards:
            if gift.length == row.current:
                given = give(
                    run.session,
                    programme=run.programme,
                    member_id=member_id,
                    gift=gift,
                    key=f"streak:{member_id}:{streak.code}:{row.started}:{gift.length}",
                    source_type="streak",
                    source_id=streak.code,
                    at=event.occurred_at,
                    event_id=event_id,
                    now=run.now,
                )
                effects.append(
                    {
                        "kind": "streak_reached",
                        "streak": streak.code,
                        "length": row.current,
                        "reward": given,
                    }
                )
    return effects


def streaks_of(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime
) -> list[StreakOut]:
    """Each streak of the programme with the member's run as of ``now``."""
    from fidelia.engagement.plus import plus_for

    members.get(session, programme=programme, member_id=member_id)
    defs = plus_for(session, programme)
    rows = rows_for(session, programme, [member_id])
    out = []
    for streak in defs.streaks.values():
        row = rows.get((member_id, streak.code))
        today = period_index(now, streak.period, defs.tz)
        current, best, used = (row.current, row.best, row.freezes_used) if row else (0, 0, 0)
        last = row.last if row else -1
        missed = max(today - last - 1, 0)
        if current and missed > streak.freezes - used:
            current, used = 0, 0  # broken: the next event starts a new run
        upcoming = sorted(g.length for g in streak.rewards if g.length > current)
        out.append(
            StreakOut(
                streak=streak.code,
                name=streak.name,
                period=streak.period,
                current=current,
                best=best,
                this_period_done=last == today,
                freezes_left=max(streak.freezes - used - (missed if current else 0), 0),
                next_reward_at=upcoming[0] if upcoming else None,
                left=upcoming[0] - current if upcoming else None,
            )
        )
    return out
