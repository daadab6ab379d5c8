"""Rewards exclusive to subscribers: closed (reason ``plan``) to members without a live
subscription to a plan listing them. Registered as a gate of the rewards eligibility (rewards
sit below plans); reads nothing unless a plan of the live document lists exclusive rewards."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.orm import Session

from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.plans import service
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import LIVE_STATES
from fidelia.rewards import eligibility


def closed_rewards(
    session: Session, programme: Programme, member_id: uuid.UUID, codes: frozenset[str]
) -> Mapping[str, str]:
    """The rewards among ``codes`` this member may not redeem for lack of a plan."""
    plans = sections_for(session, programme).plans
    exclusive = {c for p in plans.values() for c in p.benefits.exclusive_rewards} & codes
    if not exclusive:
        return {}
    sub = service.live_of(session, programme, member_id)
    plan = plans.get(sub.plan) if sub is not None else None
    live = sub is not None and plan is not None
    if live and service.effective(sub, plan, utcnow()) in LIVE_STATES:  # type: ignore[arg-type]
        exclusive -= set(plan.benefits.exclusive_rewards)  # type: ignore[union-attr]
    return dict.fromkeys(exclusive, "plan")


eligibility.set_gate(closed_rewards)
