"""Badges and challenges on the event path, and what a member has earned so far.

The engine run calls :func:`after_event` for every event, in the event's transaction: badge
counters and challenge progress move, badges earned and challenges completed are recorded and
rewarded there and then. A rule's ``badge`` effect calls :func:`award_badge`. Returns do not
take badges or challenge progress back (a badge is a recognition of an act, not a balance).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fidelia.engagement.definitions import Definitions, definitions_for
from fidelia.engagement.rewarding import give_voucher
from fidelia.engagement.schemas import ChallengeDef, Goal
from fidelia.kit.attach import attached
from fidelia.kit.prepared import Prepared
from fidelia.ledger import operations as ledger
from fidelia.models import (
    ChallengeCompletion,
    EngagementState,
    MemberBadge,
    Programme,
)
from fidelia.rules.state import EngineEvent, basket_amount


def award_badge(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    badge: str,
    at: datetime,
    source: str,
    event_id: uuid.UUID | None,
    level: int | None = None,
) -> dict[str, Any] | None:
    """Give ``badge`` at ``level`` (default: the next level the member does not hold).

    Returns the outcome effect, or None when the member holds it already (or every level).
    """
    defs = definitions_for(session, programme)
    definition = defs.badges.get(badge)
    top = len(definition.levels) if definition is not None else 1
    held = set(
        session.scalars(
            select(MemberBadge.level).where(
                MemberBadge.member_id == member_id, MemberBadge.badge == badge
            )
        )
    )
    if level is None:
        level = next((n for n in range(1, top + 1) if n not in held), None)
    if level is None or level in held:
        return None
    session.add(
        MemberBadge(
            programme_id=programme.id,
            member_id=member_id,
            badge=badge,
            level=level,
            earned_at=at,
            source=source[:64],
            event_id=event_id,
        )
    )
    name = definition.name if definition is not None else badge
    return {"kind": "badge_earned", "badge": badge, "name": name, "level": level, "source": source}


def event_context(event: EngineEvent) -> dict[str, Any]:
    """What badge and goal conditions read: ``event.*`` (with ``amount`` for purchases)."""
    ev: dict[str, Any] = {
        "type": event.type,
        "occurred_at": event.occurred_at,
        "channel": event.channel,
        "store": event.store,
        "properties": event.properties,
    }
    if event.purchase is not None:
        ev["amount"] = basket_amount(event.purchase)
    return {"event": ev}


def states_for(
    session: Session, *, programme: Programme, member_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, EngagementState]:
    """The engagement states of these members, read in one query per 500 (none when the
    programme has no badge or challenge), for :func:`after_event` to find without a query per
    event."""
    found: dict[uuid.UUID, EngagementState] = {}
    if not member_ids or definitions_for(session, programme).empty:
        return found
    for start in range(0, len(member_ids), 500):
        chunk = {"members": member_ids[start : start + 500]}
        for values in _READ_STATES.rows(session, chunk):
            row = attached(session, EngagementState, values)
            found[row.member_id] = row
    return found


_STATES = EngagementState.__table__
_READ_STATES = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(_STATES).where(_STATES.c.member_id.in_(bindparam("members", expanding=True)))
)


def after_event(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    event: EngineEvent,
    event_id: uuid.UUID,
    now: datetime,
    states: dict[uuid.UUID, EngagementState] | None = None,
    segments: frozenset[str] = frozenset(),
    traits: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Count the event for the programme's badges and challenges; the effects it caused.

    ``states``, when given, holds the member's state if it exists (see :func:`states_for`),
    and receives it if it is created. ``segments`` and ``traits`` are what conditions read as
    ``member.segments`` and ``traits.*`` (loaded by the intake when a definition names them)."""
    defs = definitions_for(session, programme)
    if defs.empty:
        return []
    row = states.get(member_id) if states is not None else session.get(EngagementState, member_id)
    if row is None:
        row = EngagementState(member_id=member_id, programme_id=programme.id, data={})
        session.add(row)
        if states is not None:
            states[member_id] = row
    data = {
        "badges": dict(row.data.get("badges", {})),
        "challenges": dict(row.data.get("challenges", {})),
    }
    ctx = event_context(event)
    ctx["member"] = {"segments": segments}
    ctx["traits"] = traits or {}
    effects: list[dict[str, Any]] = []
    for badge in defs.badges.values():
        if badge.event_type == event.type and defs.passes(badge, ctx):
            count = data["badges"][badge.code] = data["badges"].get(badge.code, 0) + 1
            if count in badge.levels:
                found = award_badge(
                    session,
                    programme=programme,
                    member_id=member_id,
                    badge=badge.code,
                    at=event.occurred_at,
                    source="condition",
                    event_id=event_id,
                    level=badge.levels.index(count) + 1,
                )
                effects.extend([found] if found else [])
    for challenge in defs.challenges.values():
        if challenge.active(event.occurred_at):
            done = _progress(
                session, programme, member_id, defs, challenge, data, event, ctx, event_id, now
            )
            effects.extend(done)
    if data != row.data:  # unchanged: the flush would compare and write nothing, at a cost
        row.data = data
    return effects


def measure(goal: Goal, event: EngineEvent) -> Decimal:
    """What one event adds to a goal."""
    if goal.measure == "count":
        return Decimal(1)
    if goal.measure == "spend":
        return basket_amount(event.purchase) if event.purchase is not None else Decimal(0)
    try:
        return Decimal(str(event.properties.get(goal.property or "", 0) or 0))
    except ArithmeticError:
        return Decimal(0)


def _progress(
    session: Session,
    programme: Programme,
    member_id: uuid.UUID,
    defs: Definitions,
    challenge: ChallengeDef,
    data: dict[str, Any],
    event: EngineEvent,
    ctx: dict[str, Any],
    event_id: uuid.UUID,
    now: datetime,
) -> list[dict[str, Any]]:
    mine = dict(data["challenges"].get(challenge.code, {"round": 1, "progress": []}))
    if mine.get("closed"):
        return []
    progress = [Decimal(p) for p in mine["progress"]] or [Decimal(0)] * len(challenge.goals)
    moved = False
    for i, goal in enumerate(challenge.goals):
        if goal.event_type == event.type and defs.passes(goal, ctx):
            progress[i] += measure(goal, event)
            moved = True
    if not moved:
        return []
    effects: list[dict[str, Any]] = []
    if all(p >= g.target for p, g in zip(progress, challenge.goals, strict=True)):
        effects = _complete(
            session, programme, member_id, challenge, mine["round"], event, event_id, now
        )
        done = mine["round"]
        closed = not challenge.repeatable or done == challenge.max_completions
        mine = {"round": done + 1, "progress": [], "closed": closed, "completions": done}
    else:
        mine["progress"] = [str(p) for p in progress]
    data["challenges"][challenge.code] = mine
    return effects


def _complete(
    session: Session,
    programme: Programme,
    member_id: uuid.UUID,
    challenge: ChallengeDef,
    round_no: int,
    event: EngineEvent,
    event_id: uuid.UUID,
    now: datetime,
) -> list[dict[str, Any]]:
    reward, key = challenge.reward, f"challenge:{member_id}:{challenge.code}:{round_no}"
    given: dict[str, Any] = {}
    effects: list[dict[str, Any]] = []
    if reward.points is not None:
        ledger.award(
            session,
            programme=programme,
            member_id=member_id,
            wallet=reward.wallet,
            amount=reward.points,
            idempotency_key=key,
            occurred_at=event.occurred_at,
            source_type="challenge",
            source_id=challenge.code,
            now=now,
        )
        given["points"] = {"wallet": reward.wallet, "amount": reward.points}
    if reward.voucher is not None:
        given["voucher"] = give_voucher(
            session,
            programme=programme,
            member_id=member_id,
            ref=reward.voucher,
            idempotency_key=key,
            source_id=str(event_id),
            now=now,
        )
    if reward.badge is not None:
        found = award_badge(
            session,
            programme=programme,
            member_id=member_id,
            badge=reward.badge,
            at=event.occurred_at,
            source=f"challenge:{challenge.code}",
            event_id=event_id,
        )
        effects.extend([found] if found else [])
    session.add(
        ChallengeCompletion(
            programme_id=programme.id,
            member_id=member_id,
            challenge=challenge.code,
            round=str(round_no),
            completed_at=event.occurred_at,
            event_id=event_id,
            reward=given,
        )
    )
    completed = {
        "kind": "challenge_completed",
        "challenge": challenge.code,
        "round": round_no,
        "reward": given,
    }
    return [completed, *effects]
