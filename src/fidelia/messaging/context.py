"""What a template reads: the member's profile, traits, wallets, tier distance and the event.

Traits, balances, expiring points and the distance to the next tier come from
:func:`fidelia.traits.read.describe` (one member, a handful of indexed queries), so a message
says what ``GET /members/{id}/traits`` says at the same moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fidelia.messaging.templates import Defaulting
from fidelia.models import Member, Programme
from fidelia.traits.read import describe

# A member who bought on promotion at least this share of the time is "promotion sensitive".
PROMOTION_SENSITIVE = 0.3


def profile_of(member: Member) -> dict[str, Any]:
    return {
        "id": str(member.id),
        "first_name": member.first_name,
        "last_name": member.last_name,
        "locale": member.locale,
        "postal_code": member.postal_code,
        "birth_date": member.birth_date.isoformat() if member.birth_date else None,
        "status": member.status,
        "enrolled_at": member.enrolled_at.isoformat(),
        "attributes": dict(member.attributes or {}),
    }


def _top(affinities: dict[str, Any], dimension: str) -> str | None:
    values = affinities.get(dimension) or {}
    if not values:
        return None
    best: str = max(values, key=lambda v: (values[v]["purchases_share"], values[v]["spend_share"]))
    return best


def context_for(
    session: Session,
    *,
    programme: Programme,
    member: Member,
    event: dict[str, Any],
    now: datetime,
    public_url: str,
) -> dict[str, Any]:
    """The template context of one member at ``now`` (``survey`` and ``links`` are added by the
    caller once the message has an id)."""
    traits = describe(session, programme=programme, member_id=member.id, now=now).model_dump(
        mode="json"
    )
    promo = traits.get("promo_purchases_share")
    traits["top_category"] = _top(traits["affinities"], "category")
    traits["promotion_sensitive"] = promo is not None and promo >= PROMOTION_SENSITIVE
    tier = traits["tier"] or {}
    return {
        "member": profile_of(member),
        "traits": traits,
        "points": Defaulting(traits["points"], 0),
        "expiring": Defaulting(
            {
                e["wallet"]: {"points": e["points"], "first_at": e["first_at"]}
                for e in traits["points_expiring"]
            },
            {"points": 0, "first_at": None},
        ),
        "tier": {
            "current": tier.get("tier"),
            "next": tier.get("next_tier"),
            "missing": tier.get("missing") or {},
            "review_at": tier.get("review_at"),
        },
        "event": event,
        "programme": {"name": programme.name, "public_url": public_url},
        "survey": {},
        "links": {},
    }
