"""Charity donations: points converted into money given to a named association.

A donation is a redemption of a ``donation`` reward; its value (in minor units of the
programme currency) and its association are copied onto the redemption when it is made, so
totals stay right when the reward changes later. Cancelled donations do not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.ledger.wallets import currency_scale
from fidelia.models import Programme, Redemption


@dataclass(frozen=True)
class DonationTotal:
    association: str
    donations: int
    points: int
    value: Decimal


def totals(
    session: Session,
    *,
    programme: Programme,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DonationTotal]:
    """Donations per association (issued or fulfilled), optionally within [since, until)."""
    query = (
        select(
            Redemption.association,
            func.count(),
            func.sum(Redemption.points),
            func.sum(Redemption.value_minor),
        )
        .where(
            Redemption.programme_id == programme.id,
            Redemption.kind == "donation",
            Redemption.status.in_(("issued", "used")),
        )
        .group_by(Redemption.association)
        .order_by(Redemption.association)
    )
    if since is not None:
        query = query.where(Redemption.requested_at >= since)
    if until is not None:
        query = query.where(Redemption.requested_at < until)
    scale = currency_scale(programme.currency)
    return [
        DonationTotal(
            str(name), int(count), int(points or 0), Decimal(int(value or 0)).scaleb(-scale)
        )
        for name, count, points, value in session.execute(query)
    ]
