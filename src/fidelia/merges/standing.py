"""The survivor's standing after a merge: engine state, badge and challenge counters, tier.

The duplicate's rows stay as they were (it is merged: nothing reads them until an unmerge),
and serve as the snapshot an unmerge subtracts. The survivor's rows before the merge and as
the merge wrote them are kept in the merge's details (see ``states``). The tier goes through
the tiers domain: the survivor keeps the higher of the two levels, then the joined metric may
upgrade it; every change is a ``tier_changes`` row (reason ``merge`` or ``unmerge``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from fidelia.engagement.definitions import definitions_for
from fidelia.engagement.service import award_badge
from fidelia.merges import states
from fidelia.models import EngagementState, MemberBadge, MemberState, MemberTier, Programme
from fidelia.tiers import metrics as m
from fidelia.tiers import service as tiers


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


_TIER_COLUMNS = ("tier", "source", "since", "review_at", "manual_until", "grace_until")


def _tier_json(row: MemberTier | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {c: _json(getattr(row, c)) for c in (*_TIER_COLUMNS, "metrics")}


def join_standing(
    session: Session,
    *,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    merge_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any]:
    """Combine engine state, engagement counters and tier; the snapshots an unmerge needs."""
    details: dict[str, Any] = {}
    engine_s, engine_d = (
        session.get(MemberState, survivor_id),
        session.get(MemberState, duplicate_id),
    )
    if engine_d is not None:
        details["engine"] = {"before": engine_s.state if engine_s else None}
        joined = states.combine_engine(engine_s.state if engine_s else None, engine_d.state)
        if engine_s is None:
            engine_s = MemberState(member_id=survivor_id, programme_id=programme.id, state=joined)
            session.add(engine_s)
        engine_s.state = joined
        details["engine"]["joined"] = joined
    eng_s, eng_d = (
        session.get(EngagementState, survivor_id),
        session.get(EngagementState, duplicate_id),
    )
    if eng_d is not None:
        before = eng_s.data if eng_s else {}
        joined = states.combine_engagement(before, eng_d.data)
        if eng_s is None:
            eng_s = EngagementState(member_id=survivor_id, programme_id=programme.id, data=joined)
            session.add(eng_s)
        eng_s.data = joined
        details["engagement"] = {"before": before, "joined": joined}
        session.flush()
        _badge_levels(session, programme, survivor_id, joined, merge_id, now)
    details["tier"] = _join_tier(session, programme, survivor_id, duplicate_id, now)
    session.flush()
    return details


def _badge_levels(
    session: Session,
    programme: Programme,
    member_id: uuid.UUID,
    data: dict[str, Any],
    merge_id: uuid.UUID,
    now: datetime,
) -> None:
    """Levels the summed counters reached that the survivor does not hold yet (the engine
    awards a level when a counter equals its threshold, so a sum can jump over one)."""
    defs = definitions_for(session, programme)
    for code, count in data.get("badges", {}).items():
        badge = defs.badges.get(code)
        if badge is None:
            continue
        for level, threshold in enumerate(badge.levels, start=1):
            if count >= threshold:
                award_badge(
                    session,
                    programme=programme,
                    member_id=member_id,
                    badge=code,
                    at=now,
                    source=f"merge:{merge_id}",
                    event_id=None,
                    level=level,
                )
                session.flush()


def _join_tier(
    session: Session,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any] | None:
    section = tiers.section_for(session, programme)
    theirs = session.get(MemberTier, duplicate_id)
    if section is None or theirs is None:
        return None
    row = session.get(MemberTier, survivor_id)
    snapshot = {"before": _tier_json(row)}
    if row is None:
        row = MemberTier(
            member_id=survivor_id,
            programme_id=programme.id,
            **{c: getattr(theirs, c) for c in _TIER_COLUMNS},
            metrics=theirs.metrics,
        )
        session.add(row)
    else:
        row.metrics = states.combine_metrics(row.metrics, theirs.metrics)
        if section.rank(theirs.tier) > section.rank(row.tier):
            got = _totals(session, section, programme, row, now)
            tiers.change(
                session, row=row, to=theirs.tier, reason="merge", at=now, event_id=None, got=got
            )
    session.flush()
    got = _totals(session, section, programme, row, now)
    earned = m.qualified(section, got)
    if earned > section.rank(row.tier) and row.source != "manual":
        code = section.levels[earned].code
        tiers.change(session, row=row, to=code, reason="merge", at=now, event_id=None, got=got)
        day = now.astimezone(tiers.tz_of(programme)).date()
        row.review_at = tiers.review_after(session, section, programme, survivor_id, day)
        row.grace_until = None
    tiers.set_state_tier(session, programme=programme, member_id=survivor_id, tier=row.tier)
    snapshot["after"] = _tier_json(row)
    return snapshot


def _totals(
    session: Session, section: Any, programme: Programme, row: MemberTier, now: datetime
) -> m.Totals:
    day = now.astimezone(tiers.tz_of(programme)).date()
    return tiers.current_totals(session, section, programme, row, day)


def split_standing(
    session: Session,
    *,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    merge_id: uuid.UUID,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """Take the duplicate's part out of the survivor's standing again."""
    engine = details.get("engine")
    engine_s, engine_d = (
        session.get(MemberState, survivor_id),
        session.get(MemberState, duplicate_id),
    )
    if engine and engine_s is not None and engine_d is not None:
        engine_s.state = states.split_engine(
            engine_s.state, engine_d.state, engine["before"], engine["joined"]
        )
    engagement = details.get("engagement")
    eng_s, eng_d = (
        session.get(EngagementState, survivor_id),
        session.get(EngagementState, duplicate_id),
    )
    if engagement and eng_s is not None and eng_d is not None:
        eng_s.data = states.split_engagement(
            eng_s.data, eng_d.data, engagement["before"], engagement["joined"]
        )
    session.execute(
        delete(MemberBadge).where(
            MemberBadge.member_id == survivor_id, MemberBadge.source == f"merge:{merge_id}"
        )
    )
    tier = details.get("tier")
    if tier is not None:
        _split_tier(session, programme, survivor_id, duplicate_id, tier, now)
    session.flush()


def _split_tier(
    session: Session,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    snapshot: dict[str, Any],
    now: datetime,
) -> None:
    section = tiers.section_for(session, programme)
    row = session.get(MemberTier, survivor_id)
    theirs = session.get(MemberTier, duplicate_id)
    if section is None or row is None or theirs is None:
        return
    before, after = snapshot["before"], snapshot["after"]
    if before is None:
        if row.tier == after["tier"]:  # the row came with the merge, untouched since
            session.execute(delete(MemberTier).where(MemberTier.member_id == survivor_id))
            state = session.get(MemberState, survivor_id)
            if state is not None:
                state.state = {**state.state, "tier": None}
            return
        row.metrics = states.split_metrics(row.metrics, theirs.metrics)
        return
    row.metrics = states.split_metrics(row.metrics, theirs.metrics)
    if row.tier == after["tier"] and before["tier"] != after["tier"]:
        got = _totals(session, section, programme, row, now)
        tiers.change(
            session, row=row, to=before["tier"], reason="unmerge", at=now, event_id=None, got=got
        )
        for column in ("source", "review_at", "manual_until", "grace_until"):
            value = before[column]
            if column != "source" and value is not None:
                value = datetime.fromisoformat(value)
            setattr(row, column, value)
        tiers.set_state_tier(session, programme=programme, member_id=survivor_id, tier=row.tier)
