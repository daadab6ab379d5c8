"""Leaderboards: scores kept up to date by the intake, ranks read by COUNT over one index.

A score row per (board, period, scope, member) is upserted with each batch (one executemany).
The ranking order is (``rank_score`` = -score, ``reached_at``, ``member_id``) ascending, so
the top N is an index range read. A member's rank is one plus the visible members ahead:
those with a higher score, summed from ``leaderboard_counts`` (one row per distinct score,
moved by the same batch), and those tied who got there first (a COUNT over the ties only).
A COUNT over everyone ahead (the first design) cost ~1 µs per member ahead: ~0.5 s for the
median member of a million. Only members who opted in are visible; their rows carry the flag
(updated, with the counts, when they opt in or out).

End-of-period rewards: :func:`close` writes the period's payout row first (unique), so two
closers at once pay once; the loser is told it was paid already.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, and_, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from fidelia.engagement.definitions import definitions_for
from fidelia.engagement.leaderboards_schemas import (
    BoardEntryOut,
    LeaderboardDef,
    MemberRankOut,
    PayoutOut,
    ProfileOut,
)
from fidelia.engagement.service import event_context, measure
from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.members import service as members
from fidelia.models import Job, Member, Programme
from fidelia.models.engagement_plus import (
    LeaderboardCount,
    LeaderboardMember,
    LeaderboardPayout,
    LeaderboardScore,
)
from fidelia.rules.state import EngineEvent

if TYPE_CHECKING:
    from fidelia.engagement.plus import PlusDefinitions, PlusRun

S = LeaderboardScore
C = LeaderboardCount
CLOSE_JOB = "leaderboards.close"


def period_of(board: LeaderboardDef, defs: PlusDefinitions, at: datetime) -> str | None:
    """The key of the board's period that ``at`` falls in (None: outside any)."""
    local = at.astimezone(defs.tz)
    if board.period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if board.period == "month":
        return f"{local.year}-{local.month:02d}"
    if board.period == "season":
        assert board.starts_at is not None
        assert board.ends_at is not None
        return "season" if board.starts_at <= at < board.ends_at else None
    challenge = defs.challenges.get(board.metric.challenge or "")
    return "challenge" if challenge is not None and challenge.active(at) else None


def period_end(board: LeaderboardDef, defs: PlusDefinitions, period: str) -> datetime | None:
    """When the period ends (None: never, e.g. a challenge without an end)."""
    tz: ZoneInfo = defs.tz
    if board.period == "week":
        year, week = (int(x) for x in period.split("-W"))
        monday = date.fromisocalendar(year, week, 1) + timedelta(days=7)
        return datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    if board.period == "month":
        year, month = (int(x) for x in period.split("-"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return datetime(year, month, 1, tzinfo=tz)
    if board.period == "season":
        return board.ends_at
    challenge = defs.challenges.get(board.metric.challenge or "")
    return challenge.ends_at if challenge is not None else None


_PATTERNS = {
    "week": r"^\d{4}-W\d{2}$",
    "month": r"^\d{4}-(0[1-9]|1[0-2])$",
    "season": r"^season$",
    "challenge": r"^challenge$",
}


def check_period(board: LeaderboardDef, period: str) -> str:
    if not re.match(_PATTERNS[board.period], period):
        example = {"week": "2026-W49", "month": "2026-11"}.get(board.period, board.period)
        raise ValidationFailed.on(("query", "period"), f"a {board.period} period, e.g. {example}")
    return period


# compiled once: they run for every group of events (kit.prepared)
_OPTED_IN = Prepared(
    select(LeaderboardMember.member_id, LeaderboardMember.opted_in).where(
        LeaderboardMember.member_id.in_(bindparam("members", expanding=True))
    )
)
_SCORES_BEFORE = Prepared(
    select(S.board, S.period, S.scope, S.member_id, S.rank_score, S.visible).where(
        S.programme_id == bindparam("programme_id"),
        S.member_id.in_(bindparam("members", expanding=True)),
        S.board.in_(bindparam("boards", expanding=True)),
    )
)


def opted_in(
    session: Session, programme: Programme, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, bool]:
    found = dict.fromkeys(member_ids, False)
    for start in range(0, len(member_ids), 500):
        rows = _OPTED_IN.rows(session, {"members": member_ids[start : start + 500]})
        found.update((m, bool(v)) for m, v in rows)
    return found


def after_event(
    run: PlusRun, member_id: uuid.UUID, event: EngineEvent, earned: dict[str, Any]
) -> None:
    """Add what the event scores on each board to the batch's pending scores."""
    ctx: dict[str, Any] | None = None
    for board in run.defs.leaderboards.values():
        metric = board.metric
        delta = Decimal(0)
        if metric.kind == "points":
            delta = Decimal(str(earned.get(metric.wallet, 0)))
        elif metric.kind == "events":
            delta = Decimal(1) if event.type == metric.event_type else Decimal(0)
        else:
            challenge = run.defs.challenges.get(metric.challenge or "")
            if challenge is None or metric.goal >= len(challenge.goals):
                continue
            goal = challenge.goals[metric.goal]
            if goal.event_type == event.type and challenge.active(event.occurred_at):
                ctx = ctx or {**event_context(event), "member": {}, "traits": {}}
                if definitions_for(run.session, run.programme).passes(goal, ctx):
                    delta = measure(goal, event)
        if delta <= 0:
            continue
        period = period_of(board, run.defs, event.occurred_at)
        scope = event.store or "" if board.by == "store" else ""
        if period is None or (board.by == "store" and not scope):
            continue
        run.add_score(board.code, period, scope, member_id, delta, event.occurred_at)


def write_scores(run: PlusRun) -> None:
    """Upsert the batch's scores (one executemany): score += delta, reached now; then move
    the score counts of the visible ones (one executemany, in key order: no deadlock)."""
    if not run.scores:
        return
    counts = _count_moves(run)
    rows = [
        {
            "s_programme_id": run.programme.id,
            "s_board": board,
            "s_period": period,
            "s_scope": scope,
            "s_member_id": member,
            "s_score": delta,
            "s_rank_score": -delta,
            "s_reached_at": at,
            "s_visible": run.visible.get(member, False),
        }
        for (board, period, scope, member), (delta, at) in sorted(
            run.scores.items(), key=lambda kv: (str(kv[0][3]), kv[0][:3])
        )
    ]
    postgres = run.session.get_bind().dialect.name == "postgresql"
    _UPSERT_SCORES[postgres].run_many(run.session, rows)
    move_counts(run.session, run.programme, counts)


def _upsert(table: Table, keys: list[str], moved: dict[str, Any], postgres: bool) -> Prepared:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET moved``, each column bound as ``s_<name>``
    (run as one executemany through the driver: kit.prepared)."""
    stmt = (pg_insert if postgres else sqlite_insert)(table)
    stmt = stmt.values({c.key: bindparam(f"s_{c.key}", type_=c.type) for c in table.c})
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=keys, set_={k: f(table.c, stmt.excluded) for k, f in moved.items()}
        )
    )


_SCORE_TABLE = cast(Table, S.__table__)
_UPSERT_SCORES = {  # score += delta, reached now
    postgres: _upsert(
        _SCORE_TABLE,
        ["programme_id", "board", "period", "scope", "member_id"],
        {
            "score": lambda c, new: c.score + new.score,
            "rank_score": lambda c, new: c.rank_score + new.rank_score,
            "reached_at": lambda c, new: new.reached_at,
        },
        postgres,
    )
    for postgres in (False, True)
}
_COUNT_TABLE = cast(Table, C.__table__)
_UPSERT_COUNTS = {  # members += n
    postgres: _upsert(
        _COUNT_TABLE,
        ["programme_id", "board", "period", "scope", "rank_score"],
        {"members": lambda c, new: c.members + new.members},
        postgres,
    )
    for postgres in (False, True)
}


def _count_moves(run: PlusRun) -> dict[tuple[str, str, str, Decimal], int]:
    """How the batch moves the score counts: the stored rows it changes are read first (one
    query per 500 members; they are the batch's members, locked by it)."""
    members_ = sorted({key[3] for key in run.scores})
    before: dict[tuple[str, str, str, uuid.UUID], tuple[Decimal, bool]] = {}
    for start in range(0, len(members_), 500):
        params = {
            "programme_id": run.programme.id,
            "members": members_[start : start + 500],
            "boards": list(run.defs.leaderboards),
        }
        found = _SCORES_BEFORE.rows(run.session, params)
        before.update(((b, p, s, m), (r, v)) for b, p, s, m, r, v in found)
    moves: dict[tuple[str, str, str, Decimal], int] = {}
    for key, (delta, _) in run.scores.items():
        old = before.get(key)
        visible = old[1] if old is not None else run.visible.get(key[3], False)
        if not visible:
            continue
        rank_score = -delta
        if old is not None:
            moves[(*key[:3], old[0])] = moves.get((*key[:3], old[0]), 0) - 1
            rank_score = old[0] - delta
        moves[(*key[:3], rank_score)] = moves.get((*key[:3], rank_score), 0) + 1
    return moves


def move_counts(
    session: Session, programme: Programme, moves: dict[tuple[str, str, str, Decimal], int]
) -> None:
    rows = [
        {"s_programme_id": programme.id, "s_board": b, "s_period": p, "s_scope": s,
         "s_rank_score": r, "s_members": n}
        for (b, p, s, r), n in sorted(moves.items())
        if n
    ]  # fmt: skip
    postgres = session.get_bind().dialect.name == "postgresql"
    _UPSERT_COUNTS[postgres].run_many(session, rows)


def mask(first: str | None, last: str | None, member_id: uuid.UUID) -> str:
    """A member's name as others see it when they chose none: ``M*** D.``."""
    if first:
        return f"{first[0].upper()}***" + (f" {last[0].upper()}." if last else "")
    return f"Member {member_id.hex[-4:].upper()}"


def _where(programme: Programme, board: str, period: str, scope: str) -> ColumnElement[bool]:
    return and_(
        S.programme_id == programme.id,
        S.board == board,
        S.period == period,
        S.scope == scope,
        S.visible.is_(True),
    )


def _entries(
    session: Session, query: Any, first_rank: int, step: int, with_ids: bool
) -> list[BoardEntryOut]:
    rows = session.execute(
        query.add_columns(Member.first_name, Member.last_name, LeaderboardMember.display_name)
        .join(Member, Member.id == S.member_id)
        .outerjoin(LeaderboardMember, LeaderboardMember.member_id == S.member_id)
    ).all()
    return [
        BoardEntryOut(
            rank=first_rank + i * step,
            member_id=r.member_id if with_ids else None,
            display_name=r.display_name or mask(r.first_name, r.last_name, r.member_id),
            score=r.score,
            reached_at=r.reached_at,
        )
        for i, r in enumerate(rows)
    ]


def _cols() -> Any:
    return select(S.member_id, S.score, S.reached_at)


def top(
    session: Session,
    *,
    programme: Programme,
    board: str,
    period: str,
    scope: str,
    limit: int,
    with_ids: bool = False,
) -> list[BoardEntryOut]:
    """The first ``limit`` visible members, best first."""
    query = (
        _cols()
        .where(_where(programme, board, period, scope))
        .order_by(S.rank_score, S.reached_at, S.member_id)
        .limit(limit)
    )
    return _entries(session, query, 1, 1, with_ids)


@dataclass(frozen=True)
class Position:
    score: Decimal
    rank: int | None
    key: tuple[Decimal, datetime, uuid.UUID] | None


def position(
    session: Session,
    *,
    programme: Programme,
    board: str,
    period: str,
    scope: str,
    member_id: uuid.UUID,
) -> Position:
    """The member's score and rank (None if not visible or no score): the counts of the
    scores above theirs summed, plus the ties who reached it first."""
    mine = aliased(S)
    above = (
        select(func.coalesce(func.sum(C.members), 0))
        .where(
            C.programme_id == programme.id,
            C.board == board,
            C.period == period,
            C.scope == scope,
            C.rank_score < mine.rank_score,
        )
        .scalar_subquery()
    )
    ties = (
        select(func.count())
        .select_from(S)
        .where(_where(programme, board, period, scope), S.rank_score == mine.rank_score)
        .where(tuple_(S.reached_at, S.member_id) < tuple_(mine.reached_at, mine.member_id))
        .scalar_subquery()
    )
    row = session.execute(  # one round trip: the member's row, the counts above, the ties
        select(mine.score, mine.rank_score, mine.reached_at, mine.visible, above, ties).where(
            mine.programme_id == programme.id,
            mine.board == board,
            mine.period == period,
            mine.scope == scope,
            mine.member_id == member_id,
        )
    ).first()
    if row is None:
        return Position(Decimal(0), None, None)
    score, rank_score, reached_at, visible, ahead, tied = row
    if not visible:
        return Position(score, None, None)
    return Position(score, int(ahead) + int(tied) + 1, (rank_score, reached_at, member_id))


def rank_of(
    session: Session,
    *,
    programme: Programme,
    board: str,
    period: str,
    scope: str,
    member_id: uuid.UUID,
    neighbours: int,
    with_ids: bool = False,
) -> MemberRankOut:
    """The member's rank with ``neighbours`` entries above and below."""
    members.get(session, programme=programme, member_id=member_id)
    opted = opted_in(session, programme, [member_id])[member_id]
    found = position(
        session,
        programme=programme,
        board=board,
        period=period,
        scope=scope,
        member_id=member_id,
    )
    above: list[BoardEntryOut] = []
    below: list[BoardEntryOut] = []
    if found.key is not None and found.rank is not None and neighbours:
        order = tuple_(S.rank_score, S.reached_at, S.member_id)
        base = _cols().where(_where(programme, board, period, scope))
        up = base.where(order < tuple_(*found.key)).order_by(
            S.rank_score.desc(), S.reached_at.desc(), S.member_id.desc()
        )
        above = _entries(session, up.limit(neighbours), found.rank - 1, -1, with_ids)[::-1]
        down = base.where(order > tuple_(*found.key)).order_by(
            S.rank_score, S.reached_at, S.member_id
        )
        below = _entries(session, down.limit(neighbours), found.rank + 1, 1, with_ids)
    return MemberRankOut(
        board=board,
        period=period,
        scope=scope,
        member_id=member_id,
        opted_in=opted,
        score=found.score,
        rank=found.rank,
        above=above,
        below=below,
    )


def set_profile(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    opted_in: bool,
    display_name: str | None,
) -> ProfileOut:
    """Opt the member in or out (their scores show or hide at once), under a name."""
    member = members.get(session, programme=programme, member_id=member_id)
    session.execute(
        select(Member.id).where(Member.id == member_id).with_for_update()
    )  # the intake holds it while it writes the member's scores
    row = session.get(LeaderboardMember, member_id)
    if row is None:
        row = LeaderboardMember(member_id=member_id, programme_id=programme.id, opted_in=opted_in)
        session.add(row)
    row.opted_in = opted_in
    row.display_name = display_name
    session.flush()
    flips = session.execute(
        select(S.board, S.period, S.scope, S.rank_score).where(
            S.programme_id == programme.id, S.member_id == member_id, S.visible.is_not(opted_in)
        )
    ).all()
    move_counts(session, programme, {(b, p, s, r): 1 if opted_in else -1 for b, p, s, r in flips})
    session.execute(
        update(S)
        .where(S.programme_id == programme.id, S.member_id == member_id)
        .values(visible=opted_in)
        .execution_options(synchronize_session=False)
    )
    name = display_name or mask(member.first_name, member.last_name, member_id)
    return ProfileOut(member_id=member_id, opted_in=opted_in, display_name=name)


def close(
    session: Session,
    *,
    programme: Programme,
    defs: PlusDefinitions,
    board: LeaderboardDef,
    period: str,
    now: datetime,
) -> list[PayoutOut]:
    """Pay the board's end-of-period rewards for ``period`` (every scope), once.

    409 if the period is not over yet."""
    from fidelia.engagement.plus import give

    end = period_end(board, defs, check_period(board, period))
    if end is None or now < end:
        raise Conflict(f"period {period} of {board.code!r} is not over")
    scopes = list(
        session.scalars(
            select(S.scope)
            .where(S.programme_id == programme.id, S.board == board.code, S.period == period)
            .distinct()
        )
    ) or [""]
    out = []
    last = max((g.ranks[1] for g in board.rewards), default=0)
    for scope in sorted(scopes):
        payout = LeaderboardPayout(
            id=uuid7(),
            programme_id=programme.id,
            board=board.code,
            period=period,
            scope=scope,
            paid_at=now,
            winners=[],
        )
        try:
            with session.begin_nested():
                session.add(payout)
                session.flush()
        except IntegrityError:
            out.append(
                PayoutOut(board=board.code, period=period, scope=scope, paid=False, winners=[])
            )
            continue
        winners: list[dict[str, Any]] = []
        entries = top(
            session,
            programme=programme,
            board=board.code,
            period=period,
            scope=scope,
            limit=last,
            with_ids=True,
        )
        for entry in entries:
            assert entry.member_id is not None
            for i, gift in enumerate(board.rewards):
                if gift.ranks[0] <= entry.rank <= gift.ranks[1]:
                    given = give(
                        session,
                        programme=programme,
                        member_id=entry.member_id,
                        gift=gift,
                        key=f"leaderboard:{board.code}:{period}:{scope}:{entry.rank}:{i}",
                        source_type="leaderboard",
                        source_id=board.code,
                        at=end,
                        event_id=None,
                        now=now,
                    )
                    winners.append(
                        {"rank": entry.rank, "member_id": str(entry.member_id), "reward": given}
                    )
        payout.winners = winners
        out.append(
            PayoutOut(board=board.code, period=period, scope=scope, paid=True, winners=winners)
        )
    return out


def close_due(session: Session, *, programme: Programme, now: datetime) -> list[PayoutOut]:
    """Close every finished period with scores and no payout yet, of boards with rewards."""
    from fidelia.engagement.plus import plus_for

    defs = plus_for(session, programme)
    out: list[PayoutOut] = []
    for board in defs.leaderboards.values():
        if not board.rewards:
            continue
        paid = select(LeaderboardPayout.period).where(
            LeaderboardPayout.programme_id == programme.id, LeaderboardPayout.board == board.code
        )
        periods = session.scalars(
            select(S.period)
            .where(S.programme_id == programme.id, S.board == board.code, S.period.not_in(paid))
            .distinct()
        )
        for period in list(periods):
            end = period_end(board, defs, period)
            if end is not None and end <= now:
                out += close(
                    session, programme=programme, defs=defs, board=board, period=period, now=now
                )
    return out


def board_or_404(defs: PlusDefinitions, code: str) -> LeaderboardDef:
    board = defs.leaderboards.get(code)
    if board is None:
        raise NotFound(f"no leaderboard {code!r} in the programme")
    return board


def schedule_close(session: Session, *, programme: Programme, after: datetime) -> None:
    """Enqueue the programme's daily closing of finished periods at the next local midnight."""
    tz = ZoneInfo(programme.timezone)
    day = after.astimezone(tz).date() + timedelta(days=1)
    jobs.enqueue(
        session,
        kind=CLOSE_JOB,
        payload={"programme_id": str(programme.id)},
        due_at=datetime(day.year, day.month, day.day, tzinfo=tz),
        idempotency_key=f"leaderboards-close:{programme.id}:{day.isoformat()}",
        programme_id=programme.id,
    )


@jobs.handler(CLOSE_JOB)
def run_close(session: Session, job: Job) -> None:
    """Pay the rewards of every finished period not paid yet, then schedule the next day's
    run (as long as the programme has leaderboards)."""
    from fidelia.engagement.plus import plus_for

    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None or not plus_for(session, programme).leaderboards:
        return
    at = max(job.due_at, utcnow())
    close_due(session, programme=programme, now=at)
    schedule_close(session, programme=programme, after=at)
