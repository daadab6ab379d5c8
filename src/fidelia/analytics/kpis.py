"""Programme KPIs over a period: a few aggregate statements, no event loaded into Python.

Sales figures read the daily aggregate (any period, any grain, by store or channel); per-member
figures (active, repeat, frequency, spend per member) read the member months for the whole
months of the period and the events for its partial months at either end, so a year costs a
scan of the member months, not of ten million events. The aggregates are refreshed first
(:func:`fidelia.analytics.aggregates.refresh`), so the figures include everything committed.
Days are UTC days. Points come from the ledger's entries on member accounts, grouped by
transaction kind and rule; the outstanding balance at the end is the sum of the entries
effective before it, the same sum as the ledger's as-of balances.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Numeric, bindparam, func, select, text
from sqlalchemy.orm import Session

from fidelia.analytics import aggregates
from fidelia.analytics.aggregates import HI, LO, PID, Sql, sql_for
from fidelia.analytics.schemas import (
    Activation,
    Grain,
    GroupBy,
    GroupRow,
    Headline,
    KpisOut,
    RewardRow,
    RulePoints,
    SeriesRow,
    TierFlow,
    TierRow,
    Tiers,
    Vouchers,
    WalletPoints,
)
from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.ledger.wallets import from_minor
from fidelia.models import (
    Account,
    Entry,
    LedgerTransaction,
    Member,
    MemberTier,
    Programme,
    Redemption,
    Reward,
    TierChange,
    Voucher,
    VoucherUse,
    Wallet,
)

MAX_DAYS = 366 * 3
START = bindparam("start", type_=Date())
END = bindparam("end", type_=Date())


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def since(self) -> datetime:
        return instant(self.start)

    @property
    def until(self) -> datetime:
        return instant(self.end + timedelta(days=1))


def instant(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def period(start: date, end: date) -> Period:
    """A checked period: 422 naming ``end`` (or ``start``) when it is not one."""
    if end < start:
        raise ValidationFailed.on(("query", "end"), "the period ends before it starts")
    if (end - start).days >= MAX_DAYS:
        raise ValidationFailed.on(("query", "start"), "a period of at most three years")
    return Period(start, end)


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def money(cents: int | Decimal | None) -> Decimal:
    return (Decimal(int(cents or 0)) / 100).quantize(Decimal("0.01"))


def per(cents: int, count: int) -> Decimal | None:
    return (Decimal(cents) / 100 / count).quantize(Decimal("0.01")) if count else None


def first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def compute(
    session: Session,
    *,
    programme: Programme,
    start: date,
    end: date,
    grain: Grain = "month",
    group_by: GroupBy = "none",
    activation_days: int = 30,
    refresh: bool = True,
) -> KpisOut:
    """Every KPI of ``programme`` from ``start`` to ``end`` (both included, UTC days), after
    refreshing the aggregates (``refresh=False``: the caller just did, in its own
    transaction)."""
    span = period(start, end)
    refreshed_to = as_of(session, programme, refresh)
    d = sql_for(session)
    pid = programme.id
    return KpisOut(
        start=span.start,
        end=span.end,
        grain=grain,
        group_by=group_by,
        currency=programme.currency,
        refreshed_to=refreshed_to,
        headline=headline(session, d, pid, span, activation_days),
        series=series(session, d, pid, span, grain),
        groups=groups(session, pid, span, group_by),
        points=points(session, pid, span),
        rewards=rewards(session, pid, span),
        vouchers=vouchers(session, pid, span),
        tiers=tiers(session, pid, span),
    )


def as_of(session: Session, programme: Programme, refresh: bool) -> datetime:
    """Refresh the aggregates (or read until when they were); the instant they are up to."""
    if refresh:
        return aggregates.refresh(session, programme=programme).refreshed_to
    return aggregates.watermark(session, programme=programme) or utcnow()


def _sales(session: Session, pid: uuid.UUID, span: Period, column: str | None) -> list[Any]:
    key = f"{column}, " if column else ""
    query = text(f"""SELECT {key}member, SUM(orders), SUM(sales_cents) FROM analytics_daily_sales
      WHERE programme_id = :pid AND day >= :start AND day <= :end
      GROUP BY {key}member""").bindparams(PID, START, END)
    return list(session.execute(query, {"pid": pid, "start": span.start, "end": span.end}))


def whole_months(span: Period) -> tuple[date, date, dict[str, datetime]]:
    """The whole months of the period ``[m0, m1)`` and the two partial spans at its ends
    (``lo..hi`` and ``lo2..hi2``, empty when there is none)."""
    m0 = span.start if span.start.day == 1 else first_of_next_month(span.start)
    m1 = (span.end + timedelta(days=1)).replace(day=1)
    if m0 >= m1:  # no whole month: all from the events
        edges = {"lo": span.since, "hi": span.until, "lo2": span.until, "hi2": span.until}
        return span.start, span.start, edges
    return m0, m1, {"lo": span.since, "hi": instant(m0), "lo2": instant(m1), "hi2": span.until}


EDGES = """((occurred_at >= :lo AND occurred_at < :hi)
  OR (occurred_at >= :lo2 AND occurred_at < :hi2))"""


def _per_member(session: Session, d: Sql, pid: uuid.UUID, span: Period) -> tuple[int, ...]:
    """(active members, repeat members, orders, sales cents): whole months from the member
    months, the partial months at the ends from the events."""
    m0, m1, edges = whole_months(span)
    query = text(f"""
SELECT COUNT(*), COALESCE(SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(n), 0), COALESCE(SUM(c), 0) FROM (
  SELECT member_id, SUM(n) AS n, SUM(c) AS c FROM (
    SELECT member_id, orders AS n, sales_cents AS c FROM analytics_member_months
    WHERE programme_id = :pid AND month >= :m0 AND month < :m1
    UNION ALL
    SELECT member_id, 1, {d.cents} FROM events
    WHERE programme_id = :pid AND type = 'purchase'
      AND {EDGES}
  ) AS u GROUP BY member_id
) AS m""").bindparams(
        PID,
        LO,
        HI,
        bindparam("lo2", type_=LO.type),
        bindparam("hi2", type_=LO.type),
        bindparam("m0", type_=Date()),
        bindparam("m1", type_=Date()),
    )
    row = session.execute(query, {"pid": pid, "m0": m0, "m1": m1, **edges}).one()
    return tuple(int(v or 0) for v in row)


def _activation(session: Session, d: Sql, pid: uuid.UUID, span: Period, days: int) -> Activation:
    later = (
        "e.occurred_at < m.enrolled_at + make_interval(days => :days)"
        if d is aggregates.PG
        else "e.occurred_at < strftime('%Y-%m-%d %H:%M:%f', m.enrolled_at, :shift)"
    )
    query = text(f"""
SELECT COUNT(*), COALESCE(SUM(CASE WHEN EXISTS (
  SELECT 1 FROM events AS e WHERE e.member_id = m.id AND e.type = 'purchase'
    AND e.occurred_at >= m.enrolled_at AND {later}) THEN 1 ELSE 0 END), 0)
FROM members AS m
WHERE m.programme_id = :pid AND m.enrolled_at >= :lo AND m.enrolled_at < :hi""").bindparams(
        PID, LO, HI
    )
    params = {"pid": pid, "lo": span.since, "hi": span.until}
    params |= {"days": days} if d is aggregates.PG else {"shift": f"+{days} days"}
    enrolled, activated = session.execute(query, params).one()
    return Activation(
        days=days,
        enrolled=int(enrolled),
        activated=int(activated),
        rate=ratio(int(activated), int(enrolled)),
    )


def headline(
    session: Session, d: Sql, pid: uuid.UUID, span: Period, activation_days: int
) -> Headline:
    sales = {bool(m): (int(n or 0), int(c or 0)) for m, n, c in _sales(session, pid, span, None)}
    m_orders, m_cents = sales.get(True, (0, 0))
    n_orders, n_cents = sales.get(False, (0, 0))
    active, repeat, orders, cents = _per_member(session, d, pid, span)
    enrolments = session.scalar(
        select(func.count()).where(
            Member.programme_id == pid,
            Member.enrolled_at >= span.since,
            Member.enrolled_at < span.until,
        )
    )
    members = session.scalar(
        select(func.count()).where(Member.programme_id == pid, Member.enrolled_at < span.until)
    )
    enrolled = int(enrolments or 0)
    return Headline(
        enrolments=enrolled,
        members_at_end=int(members or 0),
        active_members=active,
        repeat_members=repeat,
        repeat_rate=ratio(repeat, active),
        member_orders=m_orders,
        member_sales=money(m_cents),
        non_member_orders=n_orders,
        non_member_sales=money(n_cents),
        member_order_share=ratio(m_orders, m_orders + n_orders),
        member_sales_share=ratio(m_cents, m_cents + n_cents),
        enrolment_rate=ratio(enrolled, enrolled + n_orders) if n_orders else None,
        frequency=ratio(orders, active),
        spend_per_member=per(cents, active),
        basket_member=per(m_cents, m_orders),
        basket_non_member=per(n_cents, n_orders),
        activation=_activation(session, d, pid, span, activation_days),
    )


def bucket(d: Sql, grain: Grain, day: str) -> str:
    """The first day of ``day``'s bucket, as SQL."""
    if grain == "day":
        return day
    if d is aggregates.PG:
        return f"CAST(date_trunc('{grain}', {day}) AS date)"
    if grain == "month":
        return f"strftime('%Y-%m-01', {day})"
    return f"date({day}, '-' || ((CAST(strftime('%w', {day}) AS INTEGER) + 6) % 7) || ' days')"


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def series(session: Session, d: Sql, pid: uuid.UUID, span: Period, grain: Grain) -> list[SeriesRow]:
    params = {"pid": pid, "start": span.start, "end": span.end, "lo": span.since, "hi": span.until}
    rows: dict[date, dict[str, Any]] = {}

    def row(key: Any) -> dict[str, Any]:
        return rows.setdefault(_as_date(key), {"e": 0, "a": 0, "mo": 0, "mc": 0, "no": 0, "nc": 0})

    b = bucket(d, grain, "day")
    sales = text(f"""SELECT {b} AS b, member, SUM(orders), SUM(sales_cents)
      FROM analytics_daily_sales WHERE programme_id = :pid AND day >= :start AND day <= :end
      GROUP BY {b}, member""").bindparams(PID, START, END)
    for key, member, orders, cents in session.execute(sales, params):
        r = row(key)
        r["mo" if member else "no"] += int(orders)
        r["mc" if member else "nc"] += int(cents)
    b = bucket(d, grain, d.day.replace("occurred_at", "enrolled_at"))
    joins = text(f"""SELECT {b} AS b, COUNT(*) FROM members WHERE programme_id = :pid
      AND enrolled_at >= :lo AND enrolled_at < :hi GROUP BY {b}""").bindparams(PID, LO, HI)
    for key, count in session.execute(joins, params):
        row(key)["e"] = int(count)
    for key, count in _active_by_bucket(session, d, pid, span, grain):
        row(key)["a"] = int(count)
    return [
        SeriesRow(
            bucket=key,
            enrolments=r["e"],
            active_members=r["a"],
            member_orders=r["mo"],
            member_sales=money(r["mc"]),
            non_member_orders=r["no"],
            non_member_sales=money(r["nc"]),
        )
        for key, r in sorted(rows.items())
    ]


def _active_by_bucket(
    session: Session, d: Sql, pid: uuid.UUID, span: Period, grain: Grain
) -> list[Any]:
    """Distinct buying members per bucket: by month, whole months from the member months and
    the partial ones from the events; by day or week, from the events."""
    b = bucket(d, grain, d.day)
    if grain != "month":
        m0 = m1 = span.start
        edges = {"lo": span.since, "hi": span.until, "lo2": span.until, "hi2": span.until}
    else:
        m0, m1, edges = whole_months(span)
    months = text("""SELECT month, COUNT(*) FROM analytics_member_months
      WHERE programme_id = :pid AND month >= :m0 AND month < :m1 GROUP BY month""")
    found = list(
        session.execute(
            months.bindparams(PID, bindparam("m0", type_=Date()), bindparam("m1", type_=Date())),
            {"pid": pid, "m0": m0, "m1": m1},
        )
    )
    partial = text(f"""SELECT {b} AS b, COUNT(DISTINCT member_id) FROM events
      WHERE programme_id = :pid AND type = 'purchase' AND {EDGES} GROUP BY {b}""")
    found += session.execute(
        partial.bindparams(
            PID, LO, HI, bindparam("lo2", type_=LO.type), bindparam("hi2", type_=LO.type)
        ),
        {"pid": pid, **edges},
    )
    return found


def groups(session: Session, pid: uuid.UUID, span: Period, group_by: GroupBy) -> list[GroupRow]:
    if group_by == "none":
        return []
    found: dict[str, dict[str, int]] = {}

    def row(key: str | None) -> dict[str, int]:
        return found.setdefault(key or "", {"e": 0, "mo": 0, "mc": 0, "no": 0, "nc": 0})

    for key, member, orders, cents in _sales(session, pid, span, group_by):
        r = row(key)
        r["mo" if member else "no"] += int(orders)
        r["mc" if member else "nc"] += int(cents)
    column = Member.enrolment_store if group_by == "store" else Member.enrolment_channel
    enrolled = session.execute(
        select(column, func.count())
        .where(
            Member.programme_id == pid,
            Member.enrolled_at >= span.since,
            Member.enrolled_at < span.until,
        )
        .group_by(column)
    )
    for key, count in enrolled:
        row(key)["e"] += int(count)
    return [
        GroupRow(
            key=key,
            enrolments=r["e"],
            member_orders=r["mo"],
            member_sales=money(r["mc"]),
            non_member_orders=r["no"],
            non_member_sales=money(r["nc"]),
            basket_member=per(r["mc"], r["mo"]),
            basket_non_member=per(r["nc"], r["no"]),
        )
        for key, r in sorted(found.items())
    ]


def outstanding(session: Session, wallet: Wallet, at: datetime) -> tuple[int, int]:
    """``(available, pending)`` summed over the wallet's member accounts as of ``at``: the
    entries effective at or before it (as :func:`fidelia.ledger.balances.balance_as_of`)."""
    row = session.execute(
        select(
            func.coalesce(func.sum(Entry.amount).filter(Entry.pending.is_(False)), 0),
            func.coalesce(func.sum(Entry.amount).filter(Entry.pending.is_(True)), 0),
        )
        .join(Account, Account.id == Entry.account_id)
        .where(
            Account.wallet_id == wallet.id,
            Account.member_id.is_not(None),
            Entry.effective_at <= at,
        )
    ).one()
    return int(row[0]), int(row[1])


def in_money(wallet: Wallet, minor: int) -> Decimal | None:
    if not wallet.unit_value:
        return None
    return (Decimal(from_minor(wallet, minor)) * wallet.unit_value).quantize(Decimal("0.01"))


def points(session: Session, pid: uuid.UUID, span: Period) -> list[WalletPoints]:
    wallets = session.scalars(
        select(Wallet).where(Wallet.programme_id == pid).order_by(Wallet.code)
    )
    answer: list[WalletPoints] = []
    for wallet in wallets:
        moves = session.execute(
            select(LedgerTransaction.kind, LedgerTransaction.rule_id, func.sum(Entry.amount))
            .join(Entry, Entry.transaction_id == LedgerTransaction.id)
            .join(Account, Account.id == Entry.account_id)
            .where(
                LedgerTransaction.wallet_id == wallet.id,
                Account.member_id.is_not(None),
                LedgerTransaction.occurred_at >= span.since,
                LedgerTransaction.occurred_at < span.until,
                LedgerTransaction.kind != "release",
            )
            .group_by(LedgerTransaction.kind, LedgerTransaction.rule_id)
        )
        kinds: dict[str, int] = {}
        by_rule: dict[str | None, int] = {}
        for kind, rule, amount in moves:
            kinds[kind] = kinds.get(kind, 0) + int(amount or 0)
            if kind == "earn":
                by_rule[rule] = by_rule.get(rule, 0) + int(amount or 0)
        issued, redeemed = kinds.get("earn", 0), -kinds.get("spend", 0)
        expired = -kinds.get("expire", 0)
        available, pending = outstanding(session, wallet, span.until - timedelta(microseconds=1))
        answer.append(
            WalletPoints(
                wallet=wallet.code,
                unit=wallet.unit,
                issued=issued,
                redeemed=redeemed,
                expired=expired,
                returned=-(kinds.get("return", 0) + kinds.get("reverse", 0)),
                adjusted=kinds.get("adjust", 0) + kinds.get("transfer", 0),
                outstanding_at_end=available + pending,
                redemption_rate=ratio(redeemed, issued),
                breakage_rate=ratio(expired, expired + redeemed),
                liability_money=in_money(wallet, available + pending),
                cost_of_redemptions=in_money(wallet, redeemed),
                by_rule=[
                    RulePoints(rule=r, issued=n)
                    for r, n in sorted(by_rule.items(), key=lambda x: (-x[1], x[0] or ""))
                ],
            )
        )
    return answer


def rewards(session: Session, pid: uuid.UUID, span: Period) -> list[RewardRow]:
    rows = session.execute(
        select(
            Reward.code,
            func.count(),
            func.coalesce(func.sum(Redemption.points), 0),
            func.sum(Redemption.value_minor),
        )
        .join(Reward, Reward.id == Redemption.reward_id)
        .where(
            Redemption.programme_id == pid,
            Redemption.requested_at >= span.since,
            Redemption.requested_at < span.until,
            Redemption.status != "cancelled",
        )
        .group_by(Reward.code)
        .order_by(func.count().desc(), Reward.code)
    )
    return [
        RewardRow(
            reward=code,
            redemptions=int(n),
            points=int(p),
            value=None if v is None else money(v),
        )
        for code, n, p, v in rows
    ]


def vouchers(session: Session, pid: uuid.UUID, span: Period) -> Vouchers:
    issued, used = _issued_used(session, pid, span)
    orders, revenue = session.execute(
        select(
            func.count(func.distinct(VoucherUse.order_id)),
            func.coalesce(func.sum(VoucherUse.basket_total.cast(Numeric(18, 4))), 0),
        ).where(
            VoucherUse.programme_id == pid,
            VoucherUse.used_at >= span.since,
            VoucherUse.used_at < span.until,
        )
    ).one()
    return Vouchers(
        issued=issued,
        used=used,
        conversion=ratio(used, issued),
        orders_with_voucher=int(orders or 0),
        revenue_with_voucher=Decimal(str(revenue or 0)).quantize(Decimal("0.01")),
    )


def _issued_used(session: Session, pid: uuid.UUID, span: Period) -> tuple[int, int]:
    base = select(func.count()).where(
        Voucher.programme_id == pid,
        Voucher.issued_at >= span.since,
        Voucher.issued_at < span.until,
    )
    issued = session.scalar(base) or 0
    used = session.scalar(base.where(Voucher.uses > 0)) or 0
    return int(issued), int(used)


def tiers(session: Session, pid: uuid.UUID, span: Period) -> Tiers:
    now = session.execute(
        select(MemberTier.tier, func.count())
        .where(MemberTier.programme_id == pid)
        .group_by(MemberTier.tier)
        .order_by(func.count().desc(), MemberTier.tier)
    )
    flows = session.execute(
        select(TierChange.from_tier, TierChange.to_tier, func.count())
        .where(
            TierChange.programme_id == pid,
            TierChange.at >= span.since,
            TierChange.at < span.until,
        )
        .group_by(TierChange.from_tier, TierChange.to_tier)
        .order_by(func.count().desc())
    )
    return Tiers(
        members_now=[TierRow(tier=t, members=int(n)) for t, n in now],
        flows=[TierFlow(from_tier=f, to_tier=t, changes=int(n)) for f, t, n in flows],
    )
