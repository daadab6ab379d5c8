"""Who may redeem what, at which price.

A reward's condition is compiled once per version of the reward (cached by id and
``updated_at``) and evaluated over ``{"member": {...profile, "tier"}, "state": {...}}``: the
member's profile and the rules engine's state (purchases, spend, categories, event counts).
Limits per member and first-N scarcity count redemptions that are not cancelled; the caller
holds the reward row lock when it must rely on them (a redemption), not when it only shows
them (the catalogue).

A condition may also read ``member.segments`` and ``traits.*``: :func:`with_extras` adds them
to the context, one query each and only when a condition names them. Traits sit above rewards
in the layers, so the traits context is built by a reader the programmes domain registers
(:func:`set_traits_reader`), as segments register their document writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.kit.conditions import Predicate, compile_condition, condition_fields, parse_condition
from fidelia.models import Member, MemberState, Programme, Redemption, Reward, SegmentMember

LIVE = ("requested", "issued", "used", "expired")  # redemptions that count against limits
_CACHE: dict[tuple[uuid.UUID, datetime], Predicate] = {}
_CACHE_SIZE = 1024
_READS: dict[tuple[uuid.UUID, datetime], frozenset[str]] = {}
# (session, programme, member id, trait names) -> the member's traits as conditions read them
TraitsReader = Callable[[Session, Programme, uuid.UUID, frozenset[str]], Mapping[str, Any]]
_TRAITS_READER: list[TraitsReader] = []


def set_traits_reader(reader: TraitsReader) -> None:
    """Register how a member's traits context is read (the programmes domain does)."""
    _TRAITS_READER[:] = [reader]


# (session, programme, member id, reward codes) -> {code: reason} of the rewards a domain above
# closes to this member (plans: rewards exclusive to subscribers)
Gate = Callable[[Session, Programme, uuid.UUID, frozenset[str]], Mapping[str, str]]
_GATES: list[Gate] = []


def set_gate(gate: Gate) -> None:
    """Register a gate: the plans domain closes subscriber-only rewards to other members."""
    _GATES[:] = [gate]


def member_state(session: Session, *, member_id: uuid.UUID) -> dict[str, Any]:
    """The rules engine's state of the member (empty if it has none yet)."""
    row = session.get(MemberState, member_id)
    return dict(row.state) if row is not None else {}


# The member's columns a reward condition reads (``member.*``), besides the tier.
PROFILE = (
    "id", "status", "enrolment_channel", "enrolment_store", "enrolled_at", "birth_date",
    "locale", "postal_code", "attributes",
)  # fmt: skip


def context(member: Member, state: dict[str, Any]) -> dict[str, Any]:
    """What a reward condition reads."""
    return context_of({name: getattr(member, name) for name in PROFILE}, state)


def context_of(profile: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """:func:`context` from the member's :data:`PROFILE` columns, read as a row."""
    member = {**profile, "id": str(profile["id"]), "tier": state.get("tier")}
    return {"member": member, "state": state}


def predicate(programme: Programme, reward: Reward) -> Predicate:
    """The reward's compiled condition (always true without one)."""
    key = (reward.id, reward.updated_at)
    found = _CACHE.get(key)
    if found is None:
        cond = parse_condition(reward.condition) if reward.condition is not None else None
        found = compile_condition(cond, tz=ZoneInfo(programme.timezone))
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = found
    return found


def reads(reward: Reward) -> frozenset[str]:
    """The fields the reward's condition reads (cached like its predicate)."""
    key = (reward.id, reward.updated_at)
    found = _READS.get(key)
    if found is None:
        cond = parse_condition(reward.condition) if reward.condition is not None else None
        found = frozenset(f for _, f in condition_fields(cond)) if cond is not None else frozenset()
        if len(_READS) >= _CACHE_SIZE:
            _READS.clear()
        _READS[key] = found
    return found


def with_extras(
    session: Session,
    *,
    programme: Programme,
    rewards: Iterable[Reward],
    member_id: uuid.UUID,
    ctx: dict[str, Any],
) -> dict[str, Any]:
    """``ctx`` with ``member.segments`` and ``traits`` added when one of the rewards'
    conditions names them (one query each; nothing read otherwise), and the rewards a gate
    closes to the member (``closed``)."""
    rewards = list(rewards)
    if _GATES:
        closed = _GATES[0](session, programme, member_id, frozenset(r.code for r in rewards))
        ctx = {**ctx, "closed": dict(closed)} if closed else ctx
    fields = frozenset().union(*(reads(r) for r in rewards))
    traits = frozenset(f.split(".")[1] for f in fields if f.startswith("traits.") and len(f) > 7)
    if "member.segments" not in fields and not traits:
        return ctx
    out = {**ctx, "member": dict(ctx["member"])}
    if "member.segments" in fields:
        out["member"]["segments"] = frozenset(
            session.scalars(
                select(SegmentMember.segment).where(
                    SegmentMember.programme_id == programme.id,
                    SegmentMember.member_id == member_id,
                )
            )
        )
    if traits:
        if not _TRAITS_READER:
            raise RuntimeError("no traits reader registered (import fidelia.programmes)")
        out["traits"] = dict(_TRAITS_READER[0](session, programme, member_id, traits))
    return out


def price(reward: Reward, tier: str | None) -> int:
    """Points one unit costs a member of ``tier``."""
    if tier is not None and tier in reward.cost_by_tier:
        return int(reward.cost_by_tier[tier])
    return reward.cost_points


def units_of_member(
    session: Session, *, member_id: uuid.UUID, reward_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Units of each reward the member holds (redemptions not cancelled)."""
    rows = session.execute(
        select(Redemption.reward_id, func.sum(Redemption.quantity))
        .where(
            Redemption.member_id == member_id,
            Redemption.reward_id.in_(list(reward_ids)),
            Redemption.status.in_(LIVE),
        )
        .group_by(Redemption.reward_id)
    )
    return {reward_id: int(units) for reward_id, units in rows}


def members_served(session: Session, *, reward_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Distinct members holding each reward (for first-N scarcity)."""
    rows = session.execute(
        select(Redemption.reward_id, func.count(func.distinct(Redemption.member_id)))
        .where(Redemption.reward_id.in_(list(reward_ids)), Redemption.status.in_(LIVE))
        .group_by(Redemption.reward_id)
    )
    return {reward_id: int(count) for reward_id, count in rows}


def in_window(reward: Reward, now: datetime) -> bool:
    """Whether ``now`` is inside the reward's availability window."""
    if reward.available_from is not None and now < reward.available_from:
        return False
    return reward.available_until is None or now < reward.available_until


def reasons(
    programme: Programme,
    reward: Reward,
    *,
    ctx: dict[str, Any],
    now: datetime,
    quantity: int,
    held: int,
    served: int,
) -> list[str]:
    """Why the member may not redeem ``quantity`` units now; empty if they may.

    ``held``: units the member holds already; ``served``: members holding the reward."""
    out: list[str] = []
    if reward.archived or not in_window(reward, now):
        out.append("not_available")
    tier = ctx["member"]["tier"]
    if reward.eligible_tiers and tier not in reward.eligible_tiers:
        out.append("tier")
    if not predicate(programme, reward)(ctx):
        out.append("condition")
    if reward.code in ctx.get("closed", {}):
        out.append(ctx["closed"][reward.code])
    if reward.stock is not None and reward.stock < quantity:
        out.append("out_of_stock")
    if reward.limit_per_member is not None and held + quantity > reward.limit_per_member:
        out.append("limit_reached")
    if reward.first_n is not None and held == 0 and served >= reward.first_n:
        out.append("first_n_reached")
    return out
