"""The notices of an intake event, read from its stored outcome (what the batch did).

The intake writes all of a batch's notices in one ``INSERT`` after its events; reading them
from the outcomes keeps the engine, tiers and engagement unaware of notices.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from fidelia.notices.service import Notice


def event_notices(
    *,
    member_id: uuid.UUID | None,
    event_id: uuid.UUID,
    event_type: str,
    occurred_at: datetime,
    outcome: Mapping[str, Any],
) -> list[Notice]:
    """``member.enrolled``, ``points.earned`` / ``points.returned`` per wallet, tier, badge,
    challenge and voucher notices of one accepted event, in the order they happened."""
    if outcome.get("status") != "accepted":
        return []
    ref = str(event_id)
    found: list[Notice] = []

    def add(kind: str, data: dict[str, Any]) -> None:
        found.append(Notice(kind, member_id, occurred_at, {**data, "event_id": ref}))

    if outcome.get("member_created"):
        add("member.enrolled", {"source": "intake", "event_type": event_type})
    elif outcome.get("already_enrolled"):
        add("member.updated", {"source": "intake", "event_type": event_type})
    for wallet, amount in (outcome.get("totals") or {}).items():
        if Decimal(str(amount)) > 0:
            add("points.earned", {"wallet": wallet, "points": int(Decimal(str(amount)))})
    returned: dict[str, Decimal] = {}
    for effect in outcome.get("effects") or []:
        kind = effect.get("kind")
        if kind == "reversal":
            wallet = str(effect.get("wallet"))
            returned[wallet] = returned.get(wallet, Decimal(0)) + Decimal(str(effect["amount"]))
        elif kind == "tier":
            add("tier.changed", {k: effect.get(k) for k in ("from", "to", "reason")})
        elif kind == "badge_earned":
            add("badge.earned", {k: effect.get(k) for k in ("badge", "name", "level")})
        elif kind == "challenge_completed":
            add("challenge.completed", {k: effect.get(k) for k in ("challenge", "round")})
        elif kind == "referral_qualified":
            keys = ("referral_id", "referrer_id", "referee_id", "order_id", "rewards")
            add("referral.qualified", {k: effect.get(k) for k in keys})
        elif kind == "voucher_issued" and effect.get("status", "issued") == "issued":
            add("voucher.issued", {k: effect.get(k) for k in ("voucher_id", "reward", "code")})
    for wallet, amount in returned.items():
        add("points.returned", {"wallet": wallet, "points": int(amount)})
    return found
