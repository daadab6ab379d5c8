"""Which perks a member holds now, and why: their tier, their plan, an offer.

A perk is a code the till and the web shop check (``free-delivery``, ``early-access``...):
tiers list them per level, plans in their benefits, and a ``perk`` offer gives one for its
validity. A plan's tier floor counts as the tier for the perks (the member holds the floor
tier's perks while the subscription is live). Read-only: three small queries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.models import MemberTier, Programme
from fidelia.models.offers import OfferTarget
from fidelia.offers.schemas import PerkOut, PerksOut
from fidelia.offers.service import offers_of
from fidelia.plans import service as plans
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import LIVE_STATES
from fidelia.tiers.schemas import Perk


def perks_of(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime | None = None
) -> PerksOut:
    now = now or utcnow()
    members.get(session, programme=programme, member_id=member_id)
    sections = sections_for(session, programme)
    found: dict[str, tuple[Perk, list[dict[str, Any]]]] = {}

    def add(perk: Perk, source: dict[str, Any]) -> None:
        found.setdefault(perk.code, (perk, []))[1].append(source)

    tier = session.scalar(select(MemberTier.tier).where(MemberTier.member_id == member_id))
    effective, plan_code = tier, None
    sub = plans.live_of(session, programme, member_id)
    plan = sections.plans.get(sub.plan) if sub is not None else None
    if sub is not None and plan is not None and plans.effective(sub, plan, now) in LIVE_STATES:
        plan_code = plan.code
        until = sub.grace_until if sub.status == "past_due" else sub.period_end
        for perk in plan.benefits.perks:
            add(perk, {"kind": "plan", "code": plan.code, "until": until})
        floor = plan.benefits.tier_floor
        ranks = sections.tier_ranks
        if floor is not None and ranks.get(floor, 0) > ranks.get(tier or "", 0):
            effective = floor
    for perk in sections.tier_perks.get(effective or "", []):
        source: dict[str, Any] = {"kind": "tier", "code": effective, "until": None}
        if effective != tier:
            source["via"] = f"plan:{plan_code} tier_floor"
        add(perk, source)
    offers = {c: o for c, o in offers_of(session, programme).items() if o.kind == "perk"}
    if offers:
        targets = session.scalars(
            select(OfferTarget).where(
                OfferTarget.programme_id == programme.id,
                OfferTarget.member_id == member_id,
                OfferTarget.offer.in_(sorted(offers)),
                OfferTarget.valid_from <= now,
            )
        )
        for target in targets:
            if target.valid_until is not None and target.valid_until <= now:
                continue
            perk_def = offers[target.offer].perk
            assert perk_def is not None
            add(perk_def, {"kind": "offer", "code": target.offer, "until": target.valid_until})
    return PerksOut(
        member_id=member_id,
        at=now,
        tier=tier,
        effective_tier=effective,
        plan=plan_code,
        perks=[
            PerkOut(
                code=perk.code,
                description=perk.description,
                labels=dict(perk.labels),
                sources=sources,
            )
            for perk, sources in sorted(found.values(), key=lambda f: f[0].code)
        ],
    )
