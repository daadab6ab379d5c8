"""The dashboard's headline figures for one programme, wallet and period.

A handful of aggregate queries, each one statement over indexed columns: members, active
members, postings by kind, postings by month (one ``CASE`` maps each instant to its month in
the programme's time zone, so the buckets are right on both databases), liability, redemptions
and the tier mix. These belong to the analytics domain when it lands; the page only renders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from fidelia.ledger.expiry import add_months
from fidelia.ledger.wallets import from_minor
from fidelia.models import (
    Account,
    Entry,
    Event,
    LedgerTransaction,
    Member,
    MemberTier,
    Programme,
    Redemption,
    Wallet,
)

ACTIVE_DAYS = 90
MAX_MONTHS = 36


@dataclass
class Month:
    start: date
    issued: int = 0
    redeemed: int = 0
    expired: int = 0


@dataclass
class Figures:
    """What the dashboard shows; amounts in the wallet's minor units."""

    start: date
    end: date
    members: int
    new_members: int
    active_members: int
    issued: int
    redeemed: int
    expired: int
    liability_points: int
    liability_money: Decimal | None
    redemptions: dict[str, int]
    tiers: list[tuple[str, int]]
    months: list[Month] = field(default_factory=list)


def _instant(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def month_starts(start: date, end: date) -> list[date]:
    """The first day of each month from ``start``'s to the one before ``end`` (at most 36)."""
    first = start.replace(day=1)
    months: list[date] = []
    while first < end and len(months) < MAX_MONTHS:
        months.append(first)
        first = add_months(first, 1)
    return months


def _member_postings(wallet: Wallet, since: datetime, until: datetime) -> Select[str, int]:
    return (
        select(LedgerTransaction.kind, func.sum(Entry.amount))
        .join(Entry, Entry.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Entry.account_id)
        .where(
            LedgerTransaction.wallet_id == wallet.id,
            LedgerTransaction.occurred_at >= since,
            LedgerTransaction.occurred_at < until,
            Account.member_id.is_not(None),
            LedgerTransaction.kind.in_(("earn", "spend", "expire")),
        )
    )


def _by_month(
    session: Session, wallet: Wallet, starts: list[date], tz: ZoneInfo, until: datetime
) -> list[Month]:
    months = [Month(start) for start in starts]
    if not months:
        return months
    bounds = [_instant(m.start, tz) for m in months[1:]] + [until]
    bucket = case(
        *((LedgerTransaction.occurred_at < b, i) for i, b in enumerate(bounds)), else_=-1
    ).label("bucket")
    query = _member_postings(wallet, _instant(starts[0], tz), until)
    rows = session.execute(query.add_columns(bucket).group_by(LedgerTransaction.kind, bucket))
    for kind, amount, index in rows:
        if 0 <= index < len(months):
            month, value = months[index], int(amount or 0)
            if kind == "earn":
                month.issued += value
            elif kind == "spend":
                month.redeemed -= value
            else:
                month.expired -= value
    return months


def compute(
    session: Session, *, programme: Programme, wallet: Wallet, start: date, end: date
) -> Figures:
    """The figures of ``programme`` from ``start`` to ``end`` (excluded), local days."""
    tz = ZoneInfo(programme.timezone)
    since, until = _instant(start, tz), _instant(end, tz)
    pid = programme.id
    members = session.scalar(
        select(func.count()).where(Member.programme_id == pid, Member.enrolled_at < until)
    )
    new = session.scalar(
        select(func.count()).where(
            Member.programme_id == pid, Member.enrolled_at >= since, Member.enrolled_at < until
        )
    )
    active = session.scalar(
        select(func.count(func.distinct(Event.member_id))).where(
            Event.programme_id == pid,
            Event.occurred_at >= until - timedelta(days=ACTIVE_DAYS),
            Event.occurred_at < until,
        )
    )
    totals: dict[str, int] = {}
    query = _member_postings(wallet, since, until).group_by(LedgerTransaction.kind)
    for kind, amount in session.execute(query):
        totals[kind] = int(amount or 0)
    liability = session.scalar(
        select(func.coalesce(func.sum(Account.available), 0)).where(
            Account.wallet_id == wallet.id, Account.member_id.is_not(None), Account.available > 0
        )
    )
    money = None
    if wallet.unit_value:
        money = (Decimal(from_minor(wallet, int(liability or 0))) * wallet.unit_value).quantize(
            Decimal("0.01")
        )
    return Figures(
        start=start,
        end=end,
        members=members or 0,
        new_members=new or 0,
        active_members=active or 0,
        issued=totals.get("earn", 0),
        redeemed=-totals.get("spend", 0),
        expired=-totals.get("expire", 0),
        liability_points=int(liability or 0),
        liability_money=money,
        redemptions=_redemptions(session, pid, since, until),
        tiers=_tiers(session, pid),
        months=_by_month(session, wallet, month_starts(start, end), tz, until),
    )


def _redemptions(
    session: Session, programme_id: uuid.UUID, since: datetime, until: datetime
) -> dict[str, int]:
    rows = session.execute(
        select(Redemption.status, func.count())
        .where(
            Redemption.programme_id == programme_id,
            Redemption.requested_at >= since,
            Redemption.requested_at < until,
        )
        .group_by(Redemption.status)
        .order_by(Redemption.status)
    )
    return {status: int(count) for status, count in rows}


def _tiers(session: Session, programme_id: uuid.UUID) -> list[tuple[str, int]]:
    rows = session.execute(
        select(MemberTier.tier, func.count())
        .where(MemberTier.programme_id == programme_id)
        .group_by(MemberTier.tier)
        .order_by(func.count().desc(), MemberTier.tier)
    )
    return [(tier, int(count)) for tier, count in rows]
