"""What a template reads: the member's profile, traits, wallets, tier distance and the event.

Traits, balances, expiring points and the distance to the next tier come from
:func:`fidelia.traits.read.describe` (one member, a handful of indexed queries), so a message
says what ``GET /members/{id}/traits`` says at the same moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fidelia.messaging.templates import CONTEXT_NAMES, Defaulting
from fidelia.models import Member, Programme
from fidelia.traits import loyalty
from fidelia.traits.read import describe
from fidelia.traits.service import section_for as traits_section

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
    names: frozenset[str] | None = None,
    points: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The template context of one member at ``now`` (``survey`` and ``links`` are added by the
    caller once the message has an id). With ``names`` (what the templates read), only those
    parts are read: ``traits`` costs a dozen queries, ``points`` one or two (none when the
    caller read them for many members at once)."""
    wanted = names if names is not None else CONTEXT_NAMES
    context: dict[str, Any] = {
        "member": profile_of(member),
        "event": event,
        "programme": {"name": programme.name, "public_url": public_url},
        "survey": {},
        "links": {},
    }
    if "traits" in wanted:
        traits = describe(session, programme=programme, member_id=member.id, now=now)
        data = traits.model_dump(mode="json")
        promo = data.get("promo_purchases_share")
        data["top_category"] = _top(data["affinities"], "category")
        data["promotion_sensitive"] = promo is not None and promo >= PROMOTION_SENSITIVE
        context["traits"] = data
        points, expiring, tier = data["points"], data["points_expiring"], data["tier"]
    else:
        context["traits"] = {}
        read_points = wanted if points is None else wanted - {"points"}
        found, expiring, tier = _loyalty(session, programme, member, now, read_points)
        points = found if points is None else points
    context["points"] = Defaulting(points, 0)
    context["expiring"] = Defaulting(
        {e["wallet"]: {"points": e["points"], "first_at": e["first_at"]} for e in expiring},
        {"points": 0, "first_at": None},
    )
    tier = tier or {}
    context["tier"] = {
        "current": tier.get("tier"),
        "next": tier.get("next_tier"),
        "missing": tier.get("missing") or {},
        "review_at": tier.get("review_at"),
    }
    return context


def _loyalty(
    session: Session, programme: Programme, member: Member, now: datetime, wanted: frozenset[str]
) -> tuple[dict[str, int], list[dict[str, Any]], dict[str, Any] | None]:
    """Points, expiring points and tier distance, each read only if a template reads it."""
    points: dict[str, int] = {}
    if "points" in wanted:
        points = loyalty.balances(session, programme=programme, member_id=member.id)
    expiring: list[dict[str, Any]] = []
    if "expiring" in wanted:
        days = traits_section(session, programme).section.expiring_within_days
        found = loyalty.expiring(
            session, programme=programme, member_id=member.id, now=now, days=days
        )
        expiring = [e.model_dump(mode="json") for e in found]
    tier = None
    if "tier" in wanted:
        distance = loyalty.tier_distance(session, programme=programme, member_id=member.id, now=now)
        tier = distance.model_dump(mode="json") if distance is not None else None
    return points, expiring, tier
