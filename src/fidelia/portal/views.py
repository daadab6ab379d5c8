"""What the portal's pages read of the signed-in member, through the domains' services (plus
the few reads no service offers: lots expiring soon, the rule labels of the live document)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.engagement import queries as engagement
from fidelia.errors import NotFound
from fidelia.ledger import balances
from fidelia.ledger import wallets as wallet_service
from fidelia.models import (
    Account,
    Event,
    LedgerTransaction,
    Lot,
    Member,
    Programme,
    Wallet,
)
from fidelia.programmes.portal_section import PortalSection
from fidelia.tiers import progress as tier_progress
from fidelia.tiers import service as tiers
from fidelia.tiers.schemas import TierProgressOut

SOON = timedelta(days=60)


@dataclass
class Balance:
    wallet: Wallet
    available: Decimal | int
    pending: Decimal | int
    value: Decimal | None  # in the programme's currency
    money: bool
    expiring: list[tuple[datetime, Decimal | int]] = field(default_factory=list)


def _accounts(session: Session, member: Member) -> dict[uuid.UUID, Account]:
    rows = session.scalars(select(Account).where(Account.member_id == member.id))
    return {a.wallet_id: a for a in rows}


def _expiring(
    session: Session, accounts: list[Account], now: datetime
) -> dict[uuid.UUID, list[tuple[datetime, int]]]:
    """Per account, what expires in the next 60 days, grouped by day (one query)."""
    if not accounts:
        return {}
    rows = session.execute(
        select(Lot.account_id, Lot.expires_at, func.sum(Lot.remaining))
        .where(
            Lot.account_id.in_([a.id for a in accounts]),
            Lot.remaining > 0,
            Lot.expires_at.is_not(None),
            Lot.expires_at > now,
            Lot.expires_at <= now + SOON,
        )
        .group_by(Lot.account_id, Lot.expires_at)
        .order_by(Lot.expires_at)
    )
    out: dict[uuid.UUID, list[tuple[datetime, int]]] = {}
    for account_id, at, amount in rows:
        if at is not None:
            out.setdefault(account_id, []).append((at, int(amount)))
    return out


def balances_of(
    session: Session,
    *,
    programme: Programme,
    member: Member,
    section: PortalSection,
    now: datetime,
) -> list[Balance]:
    """Each spendable wallet's balance, its value in money and what expires soon."""
    wallets = [w for w in wallet_service.list_wallets(session, programme=programme) if w.spendable]
    wallets.sort(key=lambda w: (w.code != "points", w.unit == "money", w.code))
    accounts = _accounts(session, member)
    expiring = _expiring(session, list(accounts.values()), now)
    out = []
    for wallet in wallets:
        account = accounts.get(wallet.id)
        available = account.available if account else 0
        amount = wallet_service.from_minor(wallet, available)
        money = wallet.unit == "money"
        rate = wallet.unit_value
        if wallet.code == "points" and section.point_value is not None:
            rate = section.point_value
        value = Decimal(amount) * rate if rate else None
        soon = [
            (at, wallet_service.from_minor(wallet, n))
            for at, n in (expiring.get(account.id, []) if account else [])
        ]
        pending = wallet_service.from_minor(wallet, account.pending if account else 0)
        out.append(Balance(wallet, amount, pending, value, money, soon))
    return out


@dataclass
class TierView:
    progress: TierProgressOut
    name: str
    next_name: str | None
    percent: int | None  # towards the next level, on its first threshold


def _level_names(session: Session, programme: Programme, language: str) -> dict[str, str]:
    section = tiers.section_for(session, programme)
    if section is None:
        return {}
    return {lv.code: lv.labels.get(language) or lv.name for lv in section.levels}


def tier_of(
    session: Session, *, programme: Programme, member: Member, language: str, now: datetime
) -> TierView | None:
    """Where the member stands (None: the programme has no tiers)."""
    try:
        got = tier_progress.progress(session, programme=programme, member_id=member.id, now=now)
    except NotFound:
        return None
    names = _level_names(session, programme, language)
    percent = None
    if got.next is not None and got.next.missing:
        metric, left = next(iter(got.next.missing.items()))
        have = Decimal(getattr(got.metric, metric, 0))
        total = have + Decimal(left)
        percent = 100 if total == 0 else int(min(have / total, Decimal(1)) * 100)
    return TierView(
        got,
        names.get(got.tier or "", got.name or ""),
        names.get(got.next.tier, got.next.name) if got.next else None,
        percent,
    )


def engagement_of(
    session: Session, *, programme: Programme, member: Member, now: datetime
) -> tuple[list[Any], list[Any]]:
    """The member's badges, and the challenges that are running or done."""
    badges = engagement.badges_of(session, programme=programme, member_id=member.id)
    challenges = [
        c
        for c in engagement.challenges_of(
            session, programme=programme, member_id=member.id, now=now
        )
        if c.status in ("active", "completed")
    ]
    return badges, challenges


def goal_percent(goal: Any) -> int:
    if not goal.target:
        return 100
    return int(min(Decimal(goal.progress) / Decimal(goal.target), Decimal(1)) * 100)


def rule_names(session: Session, programme: Programme) -> dict[str, str]:
    """Rule id -> its name in the live document."""
    document = versions.live_document(session, programme)
    return {r["id"]: r.get("name", r["id"]) for r in document.get("rules", []) if "id" in r}


@dataclass
class HistoryLine:
    at: datetime
    kind: str  # earn, spend, expire, reverse, adjust, ...
    wallet: Wallet
    amount: Decimal | int
    why: str | None  # the rule's label
    event_type: str | None
    reason: str | None


def history_of(
    session: Session,
    *,
    programme: Programme,
    member: Member,
    section: PortalSection,
    language: str,
    limit: int = 100,
) -> list[HistoryLine]:
    """The member's ledger movements, newest first, each with the rule that earned it."""
    wallets = {w.id: w for w in wallet_service.list_wallets(session, programme=programme)}
    names = rule_names(session, programme)
    lines: list[HistoryLine] = []
    for account in _accounts(session, member).values():
        wallet = wallets.get(account.wallet_id)
        if wallet is None:
            continue
        rows, _ = balances.history(session, account=account, limit=limit)
        for row in rows:
            txn: LedgerTransaction = row.transaction
            if row.available == 0 and row.pending == 0:
                continue
            label = None
            if txn.rule_id:
                label = section.rule_labels.get(txn.rule_id, {}).get(language)  # type: ignore[call-overload]
                label = label or names.get(txn.rule_id, txn.rule_id)
            lines.append(
                HistoryLine(
                    txn.occurred_at,
                    txn.kind,
                    wallet,
                    wallet_service.from_minor(wallet, row.available + row.pending),
                    label,
                    txn.source_id if txn.source_type == "event" else txn.source_type,
                    txn.reason,
                )
            )
    lines.sort(key=lambda line: line.at, reverse=True)
    lines = lines[:limit]
    ids = []
    for line in lines:
        try:
            ids.append(uuid.UUID(line.event_type or ""))
        except ValueError:
            continue
    types = dict(session.execute(select(Event.id, Event.type).where(Event.id.in_(ids))).all())
    for line in lines:
        with contextlib.suppress(ValueError):
            line.event_type = types.get(uuid.UUID(line.event_type or ""), "event")
    return lines


def events_of(
    session: Session, *, programme: Programme, member: Member, limit: int = 50
) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.programme_id == programme.id, Event.member_id == member.id)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(limit)
        )
    )


def reward_names(session: Session, *, programme: Programme) -> dict[uuid.UUID, Any]:
    """Reward id -> the reward (its name and labels), archived ones included."""
    from fidelia.models import Reward

    return {
        r.id: r for r in session.scalars(select(Reward).where(Reward.programme_id == programme.id))
    }
