"""Leaderboard API: boards, the top N, a member's rank with neighbours, opt-in, payouts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.engagement import leaderboards
from fidelia.engagement.leaderboards_schemas import (
    BoardInfoOut,
    BoardOut,
    MemberRankOut,
    PayoutOut,
    ProfileIn,
    ProfileOut,
)
from fidelia.engagement.plus import PlusDefinitions, plus_for
from fidelia.errors import ERROR_RESPONSES, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.models import Programme

router = APIRouter(tags=["leaderboards"], responses=ERROR_RESPONSES)

Period = Annotated[
    str | None,
    Query(max_length=16, description="e.g. 2026-W49, 2026-11, season, challenge; default: now"),
]
Store = Annotated[
    str | None, Query(max_length=64, description="The store, for boards ranked by store")
]


def _target(
    programme: Programme, defs: PlusDefinitions, code: str, period: str | None, store: str | None
) -> tuple[str, str]:
    board = leaderboards.board_or_404(defs, code)
    if period is None:
        found = leaderboards.period_of(board, defs, utcnow())
        if found is None:
            raise ValidationFailed.on(("query", "period"), "no period is running: name one")
        period = found
    period = leaderboards.check_period(board, period)
    if board.by == "store" and not store:
        raise ValidationFailed.on(("query", "store"), "this board ranks by store: name one")
    return period, store or "" if board.by == "store" else ""


@router.get("/leaderboards", response_model=list[BoardInfoOut], summary="The programme's boards")
def list_boards(principal: Reader, session: DbSession) -> list[BoardInfoOut]:
    """Every leaderboard of the programme with its running period.

    Scope: `read`.
    """
    defs = plus_for(session, principal.programme)
    now = utcnow()
    return [
        BoardInfoOut(
            board=b.code,
            name=b.name,
            period=b.period,
            current_period=leaderboards.period_of(b, defs, now),
            by=b.by,
            metric=b.metric.model_dump(mode="json", exclude_none=True),
            rewards=[g.model_dump(mode="json", exclude_none=True) for g in b.rewards],
        )
        for b in defs.leaderboards.values()
    ]


@router.get("/leaderboards/{code}", response_model=BoardOut, summary="The top N of a board")
def board_top(
    code: str,
    principal: Reader,
    session: DbSession,
    period: Period = None,
    store: Store = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> BoardOut:
    """The best `limit` members who opted in, by score, ties to whoever reached it first; each
    under the name they chose or a masked one (`M*** D.`). `member_id` is not given.

    404: no such board. 422: a `period` not of the board's kind, a missing `store`.

    Scope: `read`.
    """
    defs = plus_for(session, principal.programme)
    period, scope = _target(principal.programme, defs, code, period, store)
    entries = leaderboards.top(
        session, programme=principal.programme, board=code, period=period, scope=scope, limit=limit
    )
    board = defs.leaderboards[code]
    return BoardOut(board=code, name=board.name, period=period, scope=scope, entries=entries)


@router.get(
    "/leaderboards/{code}/members/{member_id}",
    response_model=MemberRankOut,
    summary="A member's rank with neighbours",
)
def member_rank(
    code: str,
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    period: Period = None,
    store: Store = None,
    neighbours: Annotated[int, Query(ge=0, le=25)] = 2,
) -> MemberRankOut:
    """The member's score and rank (null if they have not opted in), with `neighbours` entries
    above and below them.

    404: no such board or member.

    Scope: `read`.
    """
    defs = plus_for(session, principal.programme)
    period, scope = _target(principal.programme, defs, code, period, store)
    return leaderboards.rank_of(
        session,
        programme=principal.programme,
        board=code,
        period=period,
        scope=scope,
        member_id=member_id,
        neighbours=neighbours,
    )


@router.put(
    "/members/{member_id}/leaderboard-profile",
    response_model=ProfileOut,
    summary="Opt a member in or out of the leaderboards",
)
def set_profile(
    member_id: uuid.UUID, body: ProfileIn, principal: Integrator, session: DbSession
) -> ProfileOut:
    """Members appear on boards only once they opt in, under `display_name` or, without one, a
    masked name. Opting out hides their scores at once (they keep counting).

    Scope: `integration`.
    """
    return leaderboards.set_profile(
        session,
        programme=principal.programme,
        member_id=member_id,
        opted_in=body.opted_in,
        display_name=body.display_name,
    )


@router.post(
    "/leaderboards/{code}/close",
    response_model=list[PayoutOut],
    summary="Pay a finished period's rewards (once)",
)
def close_period(
    code: str,
    principal: Admin,
    session: DbSession,
    period: Annotated[str, Query(min_length=1, max_length=16)],
) -> list[PayoutOut]:
    """Give the board's rewards to the top ranks of a finished `period` (every store, for
    boards by store). The daily job does this by itself; a second call pays nothing
    (`paid: false`).

    409: the period is not over. Scope: `admin`.
    """
    defs = plus_for(session, principal.programme)
    board = leaderboards.board_or_404(defs, code)
    return leaderboards.close(
        session, programme=principal.programme, defs=defs, board=board, period=period, now=utcnow()
    )
