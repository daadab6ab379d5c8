"""Loyalty-aware traits and consent reachability, read when asked (never stored).

They are read from the domains that own them: balances from the ledger accounts, expiring points
from the open lots, distance to the next tier and the review date from the tiers' progress,
badges and challenges from engagement, the last redemption from the redemptions, reachability
from identities and consents. Storing them would duplicate state that those domains already
keep current in the same transactions; reading them costs a handful of indexed queries for one
member, which is what ``GET /members/{id}/traits`` needs.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.engagement.queries import badges_of, challenges_of
from fidelia.errors import NotFound
from fidelia.ledger.wallets import list_wallets
from fidelia.models import (
    Account,
    Consent,
    Lot,
    Member,
    MemberIdentity,
    Programme,
    Redemption,
)
from fidelia.models.messaging import BouncedAddress
from fidelia.tiers import progress as tier_progress
from fidelia.traits.schemas import PointsExpiring, Reachability, TierDistance

# Which identity makes a consent channel reachable (postal: a postal code on the profile).
ADDRESS_OF = {"email": "email", "sms": "phone", "push": "external"}
CHANNELS = ("email", "sms", "push", "postal")


def balances(session: Session, *, programme: Programme, member_id: uuid.UUID) -> dict[str, int]:
    """Available balance per wallet, in minor units for money wallets (points are integers)."""
    wallets = {w.id: w.code for w in list_wallets(session, programme=programme)}
    out = dict.fromkeys(wallets.values(), 0)
    rows = session.execute(
        select(Account.wallet_id, Account.available).where(Account.member_id == member_id)
    )
    for wallet_id, available in rows:
        if wallet_id in wallets:
            out[wallets[wallet_id]] = int(available)
    return out


def expiring(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime, days: int
) -> list[PointsExpiring]:
    """Per wallet: the points of open lots expiring within ``days``, and the first expiry."""
    wallets = {w.id: w.code for w in list_wallets(session, programme=programme)}
    rows = session.execute(
        select(Lot.wallet_id, func.sum(Lot.remaining - Lot.pending), func.min(Lot.expires_at))
        .join(Account, Account.id == Lot.account_id)
        .where(
            Account.member_id == member_id,
            Lot.remaining > 0,
            Lot.expires_at.is_not(None),
            Lot.expires_at > now,
            Lot.expires_at <= now + timedelta(days=days),
        )
        .group_by(Lot.wallet_id)
    )
    return [
        PointsExpiring(wallet=wallets.get(w, str(w)), points=int(points or 0), first_at=first)
        for w, points, first in rows
        if points
    ]


def tier_distance(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime
) -> TierDistance | None:
    """The tier, what is missing for the next one and the days to the review (None: no tiers)."""
    try:
        got = tier_progress.progress(session, programme=programme, member_id=member_id, now=now)
    except NotFound:
        return None
    review = got.window_end
    return TierDistance(
        tier=got.tier,
        next_tier=got.next.tier if got.next else None,
        missing=dict(got.next.missing) if got.next else {},
        review_at=review,
        days_to_review=max((review - now).days, 0) if review is not None else None,
    )


def engagement(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime
) -> tuple[list[str], list[dict[str, Any]]]:
    """Badges held, and the open challenges with their progress."""
    badges = [b.badge for b in badges_of(session, programme=programme, member_id=member_id)]
    open_ = [
        c.model_dump(mode="json")
        for c in challenges_of(session, programme=programme, member_id=member_id, now=now)
        if c.status == "active"
    ]
    return badges, open_


def last_redemption(session: Session, *, member_id: uuid.UUID) -> datetime | None:
    return session.scalar(
        select(func.max(Redemption.requested_at)).where(Redemption.member_id == member_id)
    )


def _email_bounced(session: Session, member: Member) -> bool:
    first = (
        select(MemberIdentity.value)
        .where(MemberIdentity.member_id == member.id, MemberIdentity.kind == "email")
        .order_by(MemberIdentity.created_at)
        .limit(1)
        .scalar_subquery()
    )
    found = session.scalar(
        select(BouncedAddress.address).where(
            BouncedAddress.programme_id == member.programme_id, BouncedAddress.address == first
        )
    )
    return found is not None


def reachability(session: Session, *, member: Member) -> list[Reachability]:
    """Per consent channel: an address to reach the member, the current consent, both."""
    kinds = set(
        session.scalars(
            select(MemberIdentity.kind).where(MemberIdentity.member_id == member.id).distinct()
        )
    )
    consents = {
        ch: granted
        for ch, granted in session.execute(
            select(Consent.channel, Consent.granted).where(Consent.member_id == member.id)
        )
    }
    if "email" in kinds and _email_bounced(session, member):
        kinds.discard("email")  # the address messaging would use is dead (a hard bounce)
    out = []
    for channel in CHANNELS:
        address = (
            member.postal_code is not None if channel == "postal" else ADDRESS_OF[channel] in kinds
        )
        consent = bool(consents.get(channel, False))
        out.append(
            Reachability(
                channel=channel, address=address, consent=consent, reachable=address and consent
            )
        )
    return out
