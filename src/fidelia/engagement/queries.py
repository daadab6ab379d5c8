"""What a member has earned: badges with their dates, challenges with their progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.engagement.definitions import definitions_for
from fidelia.engagement.schemas import BadgeOut, ChallengeDef, ChallengeOut, GoalProgressOut
from fidelia.members import service as members
from fidelia.models import EngagementState, MemberBadge, Programme


def badges_of(session: Session, *, programme: Programme, member_id: uuid.UUID) -> list[BadgeOut]:
    """The member's badges (every level earned), oldest first."""
    members.get(session, programme=programme, member_id=member_id)
    defs = definitions_for(session, programme)
    rows = session.scalars(
        select(MemberBadge)
        .where(MemberBadge.programme_id == programme.id, MemberBadge.member_id == member_id)
        .order_by(MemberBadge.earned_at, MemberBadge.id)
    )
    out = []
    for row in rows:
        definition = defs.badges.get(row.badge)
        out.append(
            BadgeOut(
                badge=row.badge,
                name=definition.name if definition else row.badge,
                labels=definition.labels if definition else {},
                level=row.level,
                levels=len(definition.levels) if definition else 1,
                earned_at=row.earned_at,
                source=row.source,
                event_id=row.event_id,
            )
        )
    return out


def challenges_of(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime
) -> list[ChallengeOut]:
    """Each challenge of the live programme with the member's progress in its current round."""
    members.get(session, programme=programme, member_id=member_id)
    row = session.get(EngagementState, member_id)
    mine = row.data.get("challenges", {}) if row is not None else {}
    return [
        _challenge_out(c, mine.get(c.code, {}), now)
        for c in definitions_for(session, programme).challenges.values()
    ]


def _challenge_out(challenge: ChallengeDef, mine: dict[str, object], now: datetime) -> ChallengeOut:
    raw = mine.get("progress") or []
    progress = [Decimal(str(p)) for p in raw] if isinstance(raw, list) else []
    progress = progress or [Decimal(0)] * len(challenge.goals)
    completions = int(str(mine.get("completions", 0)))
    if mine.get("closed"):
        status = "completed"
    elif challenge.starts_at is not None and now < challenge.starts_at:
        status = "upcoming"
    elif challenge.ends_at is not None and now >= challenge.ends_at:
        status = "ended"
    else:
        status = "active"
    goals = [
        GoalProgressOut(
            event_type=g.event_type,
            measure=g.measure,
            target=g.target,
            progress=p,
            left=max(g.target - p, Decimal(0)),
        )
        for g, p in zip(challenge.goals, progress, strict=True)
    ]
    return ChallengeOut(
        challenge=challenge.code,
        name=challenge.name,
        labels=challenge.labels,
        starts_at=challenge.starts_at,
        ends_at=challenge.ends_at,
        status=status,
        completions=completions,
        repeatable=challenge.repeatable,
        goals=goals,
        reward=challenge.reward.model_dump(mode="json", exclude_none=True),
    )
