"""The rewards catalogue: create, change, archive and list rewards; a member's view of it.

A reward is never deleted once it exists (redemptions point at it): DELETE archives it, which
hides it and stops redemptions. Changing a reward bumps ``updated_at``, which also retires its
compiled condition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, NotFound
from fidelia.kit.clock import utcnow
from fidelia.kit.conditions import validation_failed
from fidelia.ledger import repository as ledger_repo
from fidelia.ledger.wallets import find_wallet
from fidelia.models import Member, Programme, Reward, VoucherPool
from fidelia.rewards import eligibility
from fidelia.rewards.schemas import RewardIn, RewardOut, RewardUpdate

_COLUMNS = (
    "name", "description", "labels", "cost_points", "cost_by_tier", "stock", "available_from",
    "available_until", "eligible_tiers", "condition", "limit_per_member", "first_n", "featured",
    "visible", "association", "value",
)  # fmt: skip


def _pool_id(session: Session, programme: Programme, code: str | None) -> uuid.UUID | None:
    if code is None:
        return None
    pool_id = session.scalar(
        select(VoucherPool.id).where(
            VoucherPool.programme_id == programme.id, VoucherPool.code == code
        )
    )
    if pool_id is None:
        raise NotFound(f"voucher pool {code!r} does not exist")
    return pool_id


def _apply(session: Session, programme: Programme, reward: Reward, data: RewardIn) -> None:
    for column in _COLUMNS:
        setattr(reward, column, getattr(data, column))
    reward.pool_id = _pool_id(session, programme, data.pool)
    reward.updated_at = utcnow()


def create(session: Session, *, programme: Programme, data: RewardIn) -> Reward:
    """Add ``data`` to the catalogue; 409 if its code is taken."""
    taken = session.scalar(
        select(Reward.id).where(Reward.programme_id == programme.id, Reward.code == data.code)
    )
    if taken is not None:
        raise Conflict(f"reward {data.code!r} exists already")
    reward = Reward(programme_id=programme.id, code=data.code, kind=data.kind)
    _apply(session, programme, reward, data)
    session.add(reward)
    session.flush()
    return reward


def update(
    session: Session, *, programme: Programme, reward_id: uuid.UUID, changes: RewardUpdate
) -> Reward:
    """Apply a partial update, validated as a whole document (the reward row is locked)."""
    reward = get(session, programme=programme, reward_id=reward_id, lock=True)
    document = {**document_of(session, reward), **changes.model_dump(exclude_unset=True)}
    try:
        data = RewardIn.model_validate(document)
    except ValidationError as exc:
        raise validation_failed(exc) from exc
    _apply(session, programme, reward, data)
    session.flush()
    return reward


def archive(session: Session, *, programme: Programme, reward_id: uuid.UUID) -> Reward:
    """Hide the reward and stop its redemptions (existing ones live on)."""
    reward = get(session, programme=programme, reward_id=reward_id, lock=True)
    reward.archived, reward.visible, reward.updated_at = True, False, utcnow()
    session.flush()
    return reward


def get(
    session: Session, *, programme: Programme, reward_id: uuid.UUID, lock: bool = False
) -> Reward:
    """The programme's reward ``reward_id`` (locked with ``lock``); 404 if unknown."""
    query = select(Reward).where(Reward.programme_id == programme.id, Reward.id == reward_id)
    reward = session.scalar(query.with_for_update() if lock else query)
    if reward is None:
        raise NotFound(f"reward {reward_id} does not exist")
    return reward


def find(session: Session, *, programme: Programme, ref: str, lock: bool = False) -> Reward:
    """The reward whose code (or id) is ``ref``; 404 if unknown."""
    try:
        return get(session, programme=programme, reward_id=uuid.UUID(ref), lock=lock)
    except ValueError:
        pass
    query = select(Reward).where(Reward.programme_id == programme.id, Reward.code == ref)
    reward = session.scalar(query.with_for_update() if lock else query)
    if reward is None:
        raise NotFound(f"reward {ref!r} does not exist")
    return reward


def list_rewards(
    session: Session, *, programme: Programme, archived: bool = False, kind: str | None = None
) -> list[Reward]:
    """The catalogue, featured first, then by code."""
    query = select(Reward).where(Reward.programme_id == programme.id)
    if not archived:
        query = query.where(Reward.archived.is_(False))
    if kind is not None:
        query = query.where(Reward.kind == kind)
    return list(session.scalars(query.order_by(Reward.featured.desc(), Reward.code)))


def document_of(session: Session, reward: Reward) -> dict[str, Any]:
    """The reward as the document that created it."""
    doc = {column: getattr(reward, column) for column in _COLUMNS}
    pool = session.get(VoucherPool, reward.pool_id) if reward.pool_id else None
    return {**doc, "code": reward.code, "kind": reward.kind, "pool": pool.code if pool else None}


def out(session: Session, reward: Reward) -> RewardOut:
    """The API shape of a reward."""
    return RewardOut(
        **document_of(session, reward),
        id=reward.id,
        archived=reward.archived,
        created_at=reward.created_at,
        updated_at=reward.updated_at,
    )


@dataclass(frozen=True)
class Offer:
    """A reward as one member sees it."""

    reward: Reward
    price: int
    reasons: list[str]
    affordable: bool


def catalogue_for(
    session: Session, *, programme: Programme, member: Member, now: datetime | None = None
) -> list[Offer]:
    """Visible rewards in their window, each with the member's price and what stops them."""
    now = now or utcnow()
    rewards = [
        r
        for r in list_rewards(session, programme=programme)
        if r.visible and (r.available_until is None or r.available_until > now)
    ]
    ids = [r.id for r in rewards]
    state = eligibility.member_state(session, member_id=member.id)
    ctx = eligibility.context(member, state)
    ctx = eligibility.with_extras(
        session, programme=programme, rewards=rewards, member_id=member.id, ctx=ctx
    )
    held = eligibility.units_of_member(session, member_id=member.id, reward_ids=ids)
    scarce = [r.id for r in rewards if r.first_n is not None]
    served = eligibility.members_served(session, reward_ids=scarce) if scarce else {}
    points = _available_points(session, programme, member.id)
    offers = []
    for reward in rewards:
        cost = eligibility.price(reward, ctx["member"]["tier"])
        why = eligibility.reasons(
            programme,
            reward,
            ctx=ctx,
            now=now,
            quantity=1,
            held=held.get(reward.id, 0),
            served=served.get(reward.id, 0),
        )
        offers.append(Offer(reward, cost, why, points >= cost))
    return offers


def _available_points(session: Session, programme: Programme, member_id: uuid.UUID) -> int:
    wallet = find_wallet(session, programme=programme, code="points")
    if wallet is None:
        return 0
    account = ledger_repo.find_member_account(session, wallet=wallet, member_id=member_id)
    return account.available if account is not None else 0
