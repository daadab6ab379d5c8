"""What the members pages read: the search by any identity and the member 360° view, all
through the domains' services (plus the two reads no service offers yet: lots and the name
search)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.engagement import queries as engagement
from fidelia.errors import FideliaError
from fidelia.ledger import balances
from fidelia.ledger import repository as ledger_repo
from fidelia.ledger import wallets as wallet_service
from fidelia.members import identities
from fidelia.members import service as members
from fidelia.models import (
    Account,
    Event,
    Lot,
    Member,
    MemberIdentity,
    MemberTier,
    Programme,
    Redemption,
    SegmentMember,
    TierChange,
    Voucher,
    Wallet,
)
from fidelia.models.messaging import Message
from fidelia.models.scenarios import ScenarioJourney
from fidelia.rewards import pools as pool_service
from fidelia.rewards import redemptions as redemption_service
from fidelia.rewards import service as catalogue
from fidelia.rewards import vouchers as voucher_service
from fidelia.segments import service as segment_service
from fidelia.tiers import service as tiers
from fidelia.traits import service as traits_service

SEARCH_LIMIT = 50


def identity_values(programme: Programme, text: str) -> set[str]:
    """Every normalised form ``text`` could be as an identity (card, email, phone, external)."""
    values = {text}
    for normalise in (
        identities.normalise_card,
        identities.normalise_email,
        lambda v: identities.normalise_phone(v, region=programme.country),
    ):
        try:
            values.add(normalise(text))
        except FideliaError:
            continue
    return values


def search(session: Session, *, programme: Programme, text: str) -> list[Member]:
    """Members whose card, email, phone or external id is ``text`` (normalised as at intake,
    found by the (programme, value) index), else whose name contains it; at most 50. The name
    scan (``LIKE '%...%'``, no index can serve it) runs only when no identity matched."""
    text = text.strip()[:320]
    if not text:
        return []
    by_identity = list(
        session.scalars(
            select(MemberIdentity.member_id)
            .where(
                MemberIdentity.programme_id == programme.id,
                MemberIdentity.value.in_(sorted(identity_values(programme, text))),
            )
            .limit(SEARCH_LIMIT)
        )
    )
    pattern = f"%{text.lower().replace('%', '').replace('_', '')}%"
    full_name = func.lower(
        func.coalesce(Member.first_name, "") + " " + func.coalesce(Member.last_name, "")
    )
    named = select(Member).where(  # the full name holds the last name: one test per row
        Member.programme_id == programme.id, full_name.like(pattern)
    )
    found = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(by_identity)))}
    if not found and len(text) >= 2:
        for member in session.scalars(
            named.order_by(Member.last_name, Member.id).limit(SEARCH_LIMIT)
        ):
            found.setdefault(member.id, member)
    ordered = [found[i] for i in dict.fromkeys(by_identity) if i in found]
    ordered += [m for i, m in found.items() if i not in set(by_identity)]
    return ordered[:SEARCH_LIMIT]


@dataclass
class WalletView:
    wallet: Wallet
    account: Account | None
    lots: list[Lot] = field(default_factory=list)
    history: list[balances.HistoryRow] = field(default_factory=list)


@dataclass
class MemberView:
    """Everything the 360° page shows of one member."""

    member: Member
    details: dict[str, Any]
    consent_history: list[Any]
    status_history: list[Any]
    wallets: list[WalletView]
    tier: MemberTier | None
    tier_history: list[TierChange]
    badges: list[Any]
    challenges: list[Any]
    vouchers: list[Voucher]
    redemptions: list[Redemption]
    events: list[Event]
    # what the page's actions offer: the catalogue, the voucher pools, the tier levels
    rewards: list[Any] = field(default_factory=list)
    pools: list[Any] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    # the data-driven domains: live segments, computed traits, scenario journeys, messages
    segments: list[SegmentMember] = field(default_factory=list)
    traits: list[tuple[str, Any]] = field(default_factory=list)
    journeys: list[ScenarioJourney] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


def _lots(session: Session, account: Account) -> list[Lot]:
    query = (
        select(Lot)
        .where(Lot.account_id == account.id, (Lot.remaining > 0) | (Lot.pending > 0))
        .order_by(Lot.expires_at.is_(None), Lot.expires_at, Lot.id)
        .limit(100)
    )
    return list(session.scalars(query))


def _traits(
    session: Session, programme: Programme, member_id: uuid.UUID, now: datetime
) -> list[tuple[str, Any]]:
    """The member's computed traits as of ``now`` (recency and windows included), the plain
    values only (the day buckets and affinity maps are for conditions, not for reading)."""
    row = traits_service.traits_row(session, member_id=member_id)
    if row is None:
        return []
    section = traits_service.section_for(session, programme).section
    context = traits_service.context_for(row, now=now, section=section)
    plain = (str, int, float, Decimal, date)  # datetime is a date
    return [(k, v) for k, v in sorted(context.items()) if isinstance(v, plain)]


def _journeys(
    session: Session, programme: Programme, member_id: uuid.UUID
) -> list[ScenarioJourney]:
    query = (
        select(ScenarioJourney)
        .where(ScenarioJourney.programme_id == programme.id, ScenarioJourney.member_id == member_id)
        .order_by(ScenarioJourney.entered_at.desc(), ScenarioJourney.id.desc())
        .limit(20)
    )
    return list(session.scalars(query))


def _messages(session: Session, programme: Programme, member_id: uuid.UUID) -> list[Message]:
    query = (
        select(Message)
        .where(Message.programme_id == programme.id, Message.member_id == member_id)
        .order_by(Message.id.desc())  # UUIDv7: newest first
        .limit(20)
    )
    return list(session.scalars(query))


def load(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime
) -> MemberView:
    """The 360° view; 404 when the member is not in ``programme``."""
    member = members.get(session, programme=programme, member_id=member_id)
    wallets = []
    for wallet in wallet_service.list_wallets(session, programme=programme):
        account = ledger_repo.find_member_account(session, wallet=wallet, member_id=member.id)
        view = WalletView(wallet, account)
        if account is not None:
            view.lots = _lots(session, account)
            view.history, _ = balances.history(session, account=account, limit=50)
        wallets.append(view)
    events = session.scalars(
        select(Event)
        .where(Event.programme_id == programme.id, Event.member_id == member.id)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(50)
    )
    redemptions, _ = redemption_service.list_for_member(
        session, programme=programme, member_id=member.id, limit=50
    )
    section = tiers.section_for(session, programme)
    return MemberView(
        member=member,
        details=members.details(session, member=member),
        consent_history=members.consent_history(session, member=member),
        status_history=members.status_history(session, member=member),
        wallets=wallets,
        tier=session.get(MemberTier, member.id),
        tier_history=tiers.history(session, programme=programme, member_id=member.id),
        badges=engagement.badges_of(session, programme=programme, member_id=member.id),
        challenges=engagement.challenges_of(
            session, programme=programme, member_id=member.id, now=now
        ),
        vouchers=voucher_service.vouchers_of_member(
            session, programme=programme, member_id=member.id
        ),
        redemptions=redemptions,
        events=list(events),
        rewards=catalogue.list_rewards(session, programme=programme),
        pools=pool_service.list_pools(session, programme=programme),
        levels=[level.code for level in section.levels] if section is not None else [],
        segments=segment_service.memberships(session, programme=programme, member_id=member.id),
        traits=_traits(session, programme, member.id, now),
        journeys=_journeys(session, programme, member.id),
        messages=_messages(session, programme, member.id),
    )
