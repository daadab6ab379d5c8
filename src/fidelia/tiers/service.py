"""Tiers on the event path and for operators: qualification, returns, manual assignment.

The engine run calls :func:`after_event` for every event (after its awards are posted) and
:func:`after_return` once a return's points are taken back; both run in the event's
transaction, so an upgrade commits with the event that crossed the threshold. Every change is
written three times, together: ``member_tiers.tier``, ``member_states.state["tier"]`` (the
engine's ``rate_by_tier`` and the rewards' tier prices read it; the engine run writes it) and a
``tier_changes`` row (history and ``tier.changed`` domain event).

Definitions are read from the live programme document (cached per immutable version), never
copied into tables: there is one source of truth and nothing to resynchronise on apply.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.errors import ValidationFailed
from fidelia.kit.attach import attached
from fidelia.kit.prepared import Prepared
from fidelia.members import service as members
from fidelia.models import Member, MemberTier, Programme, TierChange
from fidelia.models import MemberState as MemberStateRow
from fidelia.rules.outcome import Amount
from fidelia.rules.state import MemberState
from fidelia.tiers import metrics as m
from fidelia.tiers.schemas import TiersSection


def section_for(session: Session, programme: Programme) -> TiersSection | None:
    """The live document's ``tiers`` section, or None when the programme has no tiers."""
    return versions.section(session, programme, "tiers", _parse)


def _parse(raw: Mapping[str, Any]) -> TiersSection | None:
    return TiersSection.model_validate(raw["tiers"]) if raw.get("tiers") else None


def tz_of(programme: Programme) -> ZoneInfo:
    return ZoneInfo(programme.timezone)


def change(
    session: Session,
    *,
    row: MemberTier,
    to: str,
    reason: str,
    at: datetime,
    event_id: uuid.UUID | None,
    got: m.Totals,
) -> dict[str, Any]:
    """Move ``row`` to tier ``to`` and record the change; returns the outcome effect."""
    before = row.tier if reason != "joined" else None
    row.tier, row.since = to, at
    session.add(
        TierChange(
            programme_id=row.programme_id,
            member_id=row.member_id,
            from_tier=before,
            to_tier=to,
            reason=reason,
            at=at,
            event_id=event_id,
            metric=got.as_dict(),
        )
    )
    return {"kind": "tier", "from": before, "to": to, "reason": reason, "metric": got.as_dict()}


def _new_row(programme: Programme, member_id: uuid.UUID, section: TiersSection) -> MemberTier:
    return MemberTier(
        member_id=member_id,
        programme_id=programme.id,
        tier=section.levels[0].code,
        source="metric",
        metrics={},
    )


def rows_for(
    session: Session, *, programme: Programme, member_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, MemberTier]:
    """The tier rows of these members, read in one query per 500 (none when the programme has
    no tiers), for :func:`after_event` to find without a query per event."""
    found: dict[uuid.UUID, MemberTier] = {}
    if not member_ids or section_for(session, programme) is None:
        return found
    for start in range(0, len(member_ids), 500):
        chunk = {"members": member_ids[start : start + 500]}
        for values in _READ_ROWS.rows(session, chunk):
            row = attached(session, MemberTier, values)
            found[row.member_id] = row
    return found


_TIERS = MemberTier.__table__
_READ_ROWS = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(_TIERS).where(_TIERS.c.member_id.in_(bindparam("members", expanding=True)))
)


def after_event(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    at: datetime,
    event_id: uuid.UUID,
    spend: Decimal | None,
    earned: Mapping[str, Amount],
    rows: dict[uuid.UUID, MemberTier] | None = None,
) -> tuple[str | None, list[dict[str, Any]]]:
    """Count the event in the member's metric and upgrade them if they now qualify.

    ``spend`` is the basket of a purchase (None for other events), ``earned`` what the event
    awarded per wallet. ``rows``, when given, holds the member's row if it exists (see
    :func:`rows_for`), and receives it if it is created. Returns the member's tier (None: the
    programme has no tiers) and the effects for the event's outcome.
    """
    section = section_for(session, programme)
    if section is None:
        return None, []
    status_points = int(earned.get(section.status_wallet, 0))
    tz = tz_of(programme)
    day = at.astimezone(tz).date()
    row = rows.get(member_id) if rows is not None else session.get(MemberTier, member_id)
    effects: list[dict[str, Any]] = []
    if row is None:
        row = _new_row(programme, member_id, section)
        session.add(row)
        if rows is not None:
            rows[member_id] = row
        effects.append(
            change(
                session,
                row=row,
                to=row.tier,
                reason="joined",
                at=at,
                event_id=event_id,
                got=m.Totals(),
            )
        )
        row.review_at = review_after(session, section, programme, member_id, day)
    if spend is not None or status_points:
        row.metrics = m.add(
            row.metrics,
            day,
            purchases=int(spend is not None),
            spend=spend or Decimal(0),
            status=status_points,
        )
    effects.extend(_upgrade(session, section, programme, row, day, at, event_id))
    return row.tier, effects


def _enrolled(session: Session, member_id: uuid.UUID, tz: ZoneInfo) -> Any:
    member = session.get(Member, member_id)
    assert member is not None
    return member.enrolled_at.astimezone(tz).date()


def current_totals(
    session: Session, section: TiersSection, programme: Programme, row: MemberTier, day: Any
) -> m.Totals:
    """The member's metric in the window containing local ``day``."""
    enrolled = _enrolled(session, row.member_id, tz_of(programme))
    start, end = m.window(section, day=day, enrolled=enrolled)
    return m.totals(row.metrics, start, end)


def _upgrade(
    session: Session,
    section: TiersSection,
    programme: Programme,
    row: MemberTier,
    day: Any,
    at: datetime,
    event_id: uuid.UUID | None,
) -> list[dict[str, Any]]:
    got = current_totals(session, section, programme, row, day)
    earned, current = m.qualified(section, got), section.rank(row.tier)
    if earned < current:
        return []
    if row.grace_until is not None:  # requalified during the grace period
        row.grace_until = None
        row.review_at = review_after(session, section, programme, row.member_id, day)
    if earned == current:
        return []
    row.source, row.manual_until = "metric", None
    row.review_at = review_after(session, section, programme, row.member_id, day)
    code = section.levels[earned].code
    return [change(session, row=row, to=code, reason="upgrade", at=at, event_id=event_id, got=got)]


def review_after(
    session: Session, section: TiersSection, programme: Programme, member_id: uuid.UUID, day: Any
) -> datetime | None:
    """The instant of the member's first review after local ``day``."""
    tz = tz_of(programme)
    review = m.next_review(section, day=day, enrolled=_enrolled(session, member_id, tz))
    return m.local_midnight(review, tz) if review is not None else None


def after_return(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    purchased_at: datetime,
    at: datetime,
    event_id: uuid.UUID,
    spend: Decimal,
    taken: Mapping[str, Amount],
) -> tuple[str | None, list[dict[str, Any]]]:
    """Take the returned spend and status points out of the purchase's day, then apply the
    programme's ``on_return`` policy: ``recompute`` moves the member to the level the metric
    now gives (down included, at once); ``keep`` leaves the level to the next review."""
    section = section_for(session, programme)
    row = session.get(MemberTier, member_id)
    if section is None or row is None:
        return None, []
    tz = tz_of(programme)
    status_points = int(taken.get(section.status_wallet, 0))
    row.metrics = m.add(
        row.metrics, purchased_at.astimezone(tz).date(), spend=-spend, status=-status_points
    )
    if section.on_return == "keep" or row.source == "manual":
        return row.tier, []
    day = at.astimezone(tz).date()
    got = current_totals(session, section, programme, row, day)
    earned = m.qualified(section, got)
    if earned >= section.rank(row.tier):
        return row.tier, []
    code = section.levels[earned].code
    row.grace_until = None
    row.review_at = review_after(session, section, programme, member_id, day)
    effect = change(session, row=row, to=code, reason="return", at=at, event_id=event_id, got=got)
    return row.tier, [effect]


def set_state_tier(
    session: Session, *, programme: Programme, member_id: uuid.UUID, tier: str
) -> None:
    """Write the tier into the engine's member state (outside an engine run)."""
    state = session.get(MemberStateRow, member_id)
    if state is None:
        data = MemberState(tier=tier).to_json()
        session.add(MemberStateRow(member_id=member_id, programme_id=programme.id, state=data))
    else:
        state.state = {**state.state, "tier": tier}


def assign(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    tier: str,
    until: datetime | None,
    reason: str,
    now: datetime,
) -> MemberTier:
    """Put a member in ``tier`` by hand (invitation-only levels too) until ``until``.

    At ``until`` the next requalification gives the member the level their metric earns.
    """
    section = section_for(session, programme)
    if section is None:
        raise ValidationFailed.on("tier", "the programme has no tiers")
    if tier not in {level.code for level in section.levels}:
        raise ValidationFailed.on("tier", f"no level {tier!r} in the programme")
    if until is not None and until <= now:
        raise ValidationFailed.on("until", "must be in the future")
    lock_member(session, programme, member_id)
    row = session.get(MemberTier, member_id)
    if row is None:  # a member who never had a tier: the row is written once it has one
        row = _new_row(programme, member_id, section)
    day = now.astimezone(tz_of(programme)).date()
    with session.no_autoflush:  # the new row has no ``since`` until ``change`` gives it
        got = current_totals(session, section, programme, row, day)
    session.add(row)
    change(
        session, row=row, to=tier, reason=f"manual:{reason}"[:32], at=now, event_id=None, got=got
    )
    row.source, row.manual_until, row.grace_until, row.review_at = "manual", until, None, until
    set_state_tier(session, programme=programme, member_id=member_id, tier=tier)
    session.flush()
    return row


def lock_member(session: Session, programme: Programme, member_id: uuid.UUID) -> Member:
    """The member, locked (the lock intake takes too); 404 if not in the programme."""
    return members.get_for_update(session, programme=programme, member_id=member_id)


def history(session: Session, *, programme: Programme, member_id: uuid.UUID) -> list[TierChange]:
    """The member's tier changes, oldest first."""
    members.get(session, programme=programme, member_id=member_id)
    query = select(TierChange).where(
        TierChange.programme_id == programme.id, TierChange.member_id == member_id
    )
    return list(session.scalars(query.order_by(TierChange.at, TierChange.id)))
