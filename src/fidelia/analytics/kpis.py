"""Programme KPIs over a period: a few aggregate statements, no event loaded into Python.

Sales figures read the daily aggregate (any period, any grain, by store or channel); per-member
figures (active, repeat, frequency, spend per member) read the member months for the whole
months of the period and the events for its partial months at either end, so a year costs a
scan of the member months, not of ten million events. The aggregates are refreshed first
(:func:`fidelia.analytics.aggregates.refresh`), so the figures include everything committed.
Days are UTC days. Points come from the daily ledger aggregate (the entries on member accounts
by day, wallet, transaction kind and rule); the outstanding balance at the end is the sum of
the day rows up to it, the same sum as the ledger's as-of balances (:func:`outstanding` reads
the entries themselves, for checks).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, Numeric, bindparam, func, select, text
from sqlalchemy.orm import Session

from fidelia.analytics import aggregates
from fidelia.analytics.aggregates import (
    HI,
    LO,
    MASK_BITS,
    PID,
    Sql,
    month_index,
    shift_month,
    sql_for,
)
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
    AnalyticsState,
    Entry,
    LedgerDay,
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


PM = bindparam("pm", type_=BigInteger())


@dataclass(frozen=True, slots=True)
class Masks:
    """The period's months as bits of the members' activity bitmaps."""

    base: date
    first: int  # bit of the period's first month
    last: int  # bit of its last month

    @property
    def pm(self) -> int:
        return sum(1 << i for i in range(self.first, self.last + 1))


def masks(session: Session, pid: uuid.UUID, span: Period) -> Masks | None:
    """The period read from the bitmaps, when it can be: its months inside them, and no member
    purchase in its first and last months outside the period (so a partial month at an end,
    like the current one, counts as whole)."""
    state = select(AnalyticsState.mask_base).where(AnalyticsState.programme_id == pid)
    base = session.scalar(state)
    if base is None:
        return None
    first, last = span.start.replace(day=1), span.end.replace(day=1)
    i0, i1 = month_index(first) - month_index(base), month_index(last) - month_index(base)
    if i0 < 0 or i1 >= MASK_BITS:
        return None
    outside = text("""SELECT COUNT(*) FROM analytics_daily_sales
      WHERE programme_id = :pid AND member AND orders > 0
        AND ((day >= :m0 AND day < :start) OR (day > :end AND day < :m1))""").bindparams(
        PID, START, END, bindparam("m0", type_=Date()), bindparam("m1", type_=Date())
    )
    params = {"pid": pid, "start": span.start, "end": span.end, "m0": first}
    if session.scalar(outside, params | {"m1": shift_month(last, 1)}):
        return None
    return Masks(base, i0, i1)


def _per_member_masks(session: Session, pid: uuid.UUID, span: Period, m: Masks) -> tuple[int, ...]:
    """(active, repeat, orders, sales cents): one scan of the activity bitmaps (a member
    repeats with two months in the period or one month of two orders), the orders and sales
    from the daily sales."""
    query = text("""SELECT COUNT(*), COALESCE(SUM(CASE
        WHEN ((months & :pm) & ((months & :pm) - 1)) <> 0 OR (multi & :pm) <> 0 THEN 1
        ELSE 0 END), 0)
      FROM analytics_member_activity WHERE programme_id = :pid AND (months & :pm) <> 0""")
    active, repeat = session.execute(query.bindparams(PID, PM), {"pid": pid, "pm": m.pm}).one()
    orders = sum(int(n or 0) for member, n, _ in _sales(session, pid, span, None) if member)
    cents = sum(int(c or 0) for member, _, c in _sales(session, pid, span, None) if member)
    return int(active), int(repeat or 0), orders, cents


def _per_member(session: Session, d: Sql, pid: uuid.UUID, span: Period) -> tuple[int, ...]:
    """(active members, repeat members, orders, sales cents): from the activity bitmaps when
    the period allows (:func:`masks`); otherwise whole months from the member months, the
    partial months at the ends from the events."""
    found = masks(session, pid, span)
    if found is not None:
        return _per_member_masks(session, pid, span, found)
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
    """Members enrolled in the period, and of them those whose first purchase at or after
    enrolment (``analytics_member_activity.activated_at``, kept by the refresh) came within
    ``days``: one scan of the period's enrolments, no probe of the events."""
    later = (
        "activated_at < enrolled_at + make_interval(days => :days)"
        if d is aggregates.PG
        else "activated_at < strftime('%Y-%m-%d %H:%M:%f', enrolled_at, :shift)"
    )
    query = text(f"""SELECT COUNT(*) FROM analytics_member_activity
WHERE programme_id = :pid AND enrolled_at >= :lo AND enrolled_at < :hi
  AND activated_at IS NOT NULL AND {later}""").bindparams(PID, LO, HI)
    params = {"pid": pid, "lo": span.since, "hi": span.until}
    params |= {"days": days} if d is aggregates.PG else {"shift": f"+{days} days"}
    activated = session.scalar(query, params)
    enrolled = session.scalar(
        select(func.count()).where(
            Member.programme_id == pid,
            Member.enrolled_at >= span.since,
            Member.enrolled_at < span.until,
        )
    )
    return Activation(
        days=days,
        enrolled=int(enrolled or 0),
        activated=int(activated or 0),
        rate=ratio(int(activated or 0), int(enrolled or 0)),
    )


def headline(
    session: Session, d: Sql, pid: uuid.UUID, span: Period, activation_days: int
) -> Headline:
    sales = {bool(m): (int(n or 0), int(c or 0)) for m, n, c in _sales(session, pid, span, None)}
    m_orders, m_cents = sales.get(True, (0, 0))
    n_orders, n_cents = sales.get(False, (0, 0))
    active, repeat, orders, cents = _per_member(session, d, pid, span)
    returns, refunds = _returns(session, pid, span)
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
        member_returns=returns,
        member_refunds=money(refunds),
        member_sales_net=money(m_cents - refunds),
        spend_per_member_net=per(cents - refunds, active),
        basket_member_net=per(m_cents - refunds, m_orders),
    )


def _returns(session: Session, pid: uuid.UUID, span: Period) -> tuple[int, int]:
    """Members' return events in the period and their refunds in cents (daily sales)."""
    query = text("""SELECT COALESCE(SUM(returns), 0), COALESCE(SUM(refund_cents), 0)
      FROM analytics_daily_sales WHERE programme_id = :pid AND day >= :start AND day <= :end
        AND member""").bindparams(PID, START, END)
    row = session.execute(query, {"pid": pid, "start": span.start, "end": span.end}).one()
    return int(row[0]), int(row[1])


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
    found_masks = masks(session, pid, span) if grain == "month" else None
    if found_masks is not None:
        m = found_masks
        sums = ", ".join(f"SUM((months >> {i}) & 1)" for i in range(m.first, m.last + 1))
        query = text(f"SELECT {sums} FROM analytics_member_activity WHERE programme_id = :pid")
        counts = session.execute(query.bindparams(PID), {"pid": pid}).one()
        return [(shift_month(m.base, m.first + k), int(n or 0)) for k, n in enumerate(counts) if n]
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
    """The points economy of the period by wallet (and rule), and the outstanding balance at
    its end, from the daily ledger aggregate (:mod:`fidelia.analytics.ledger_daily`): one scan
    of the programme's day rows up to the period's end, no ledger entry read."""
    wallets = session.scalars(
        select(Wallet).where(Wallet.programme_id == pid).order_by(Wallet.code)
    )
    inside = LedgerDay.day >= span.start  # one expression: one bound parameter
    rows = session.execute(
        select(
            LedgerDay.wallet_id, LedgerDay.kind, LedgerDay.rule_id, inside,
            func.sum(LedgerDay.amount),
        )
        .where(LedgerDay.programme_id == pid, LedgerDay.day <= span.end)
        .group_by(LedgerDay.wallet_id, LedgerDay.kind, LedgerDay.rule_id, inside)
    )  # fmt: skip
    flows: dict[uuid.UUID, list[tuple[str, str | None, int]]] = {}
    balances: dict[uuid.UUID, int] = {}
    for wallet_id, kind, rule_id, in_period, amount in rows:
        balances[wallet_id] = balances.get(wallet_id, 0) + int(amount or 0)
        if in_period and kind != "release":
            flows.setdefault(wallet_id, []).append((kind, rule_id or None, int(amount or 0)))
    answer: list[WalletPoints] = []
    for wallet in wallets:
        kinds: dict[str, int] = {}
        by_rule: dict[str | None, int] = {}
        for kind, rule, amount in flows.get(wallet.id, []):
            kinds[kind] = kinds.get(kind, 0) + amount
            if kind == "earn":
                by_rule[rule] = by_rule.get(rule, 0) + amount
        issued, redeemed = kinds.get("earn", 0), -kinds.get("spend", 0)
        expired = -kinds.get("expire", 0)
        held = balances.get(wallet.id, 0)  # available and pending, as of the end
        answer.append(
            WalletPoints(
                wallet=wallet.code,
                unit=wallet.unit,
                issued=issued,
                redeemed=redeemed,
                expired=expired,
                returned=-(kinds.get("return", 0) + kinds.get("reverse", 0)),
                adjusted=kinds.get("adjust", 0) + kinds.get("transfer", 0),
                outstanding_at_end=held,
                redemption_rate=ratio(redeemed, issued),
                breakage_rate=ratio(expired, expired + redeemed),
                liability_money=in_money(wallet, held),
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
