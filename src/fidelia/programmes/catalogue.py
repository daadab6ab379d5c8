"""The rewards catalogue and voucher pools as sections of the programme document.

Applying a document creates the pools and rewards it names and updates those that exist (by
code). What the document does not name is left alone, so a catalogue can also be run from the
API. Two things a document cannot do, by design: change a pool's discount terms (codes already
out there carry them: give the new terms a new pool code) and reset a reward's stock (stock is
consumed by redemptions; it is set when the reward is created and replenished through the API).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.models import Programme
from fidelia.rewards import pools, service
from fidelia.rewards.schemas import PoolIn, PoolUpdate, RewardIn, RewardUpdate

_POOL_TERMS = ("pattern", "discount_type", "discount_value", "min_basket", "categories", "max_uses")


def check(voucher_pools: list[PoolIn], rewards: list[RewardIn], tiers: set[str]) -> None:
    """Codes unique, reward pools declared (here or already), tiers known; 422 with the path."""
    for name, codes in (
        ("voucher_pools", [p.code for p in voucher_pools]),
        ("rewards", [r.code for r in rewards]),
    ):
        for i, code in enumerate(codes):
            if code in codes[:i]:
                raise ValidationFailed.on((name, i, "code"), f"{code!r} appears twice")
    for i, reward in enumerate(rewards):
        unknown = [
            t for t in (*reward.eligible_tiers, *reward.cost_by_tier) if tiers and t not in tiers
        ]
        if unknown:
            raise ValidationFailed.on(("rewards", i), f"unknown tiers {sorted(set(unknown))}")


def sync(session: Session, *, programme: Programme, document: dict[str, Any]) -> None:
    """Create or update the document's pools, then its rewards."""
    for i, raw in enumerate(document.get("voucher_pools", [])):
        _pool(session, programme, PoolIn.model_validate(raw), i)
    for i, raw in enumerate(document.get("rewards", [])):
        _reward(session, programme, RewardIn.model_validate(raw), i)


def _pool(session: Session, programme: Programme, data: PoolIn, index: int) -> None:
    existing = pools.find_pool(session, programme=programme, code=data.code, lock=True)
    if existing is None:
        pools.create_pool(session, programme=programme, data=data)
        return
    changed = [t for t in _POOL_TERMS if getattr(existing, t) != getattr(data, t)]
    if changed:
        raise ValidationFailed.on(
            ("voucher_pools", index, changed[0]),
            f"pool {data.code!r} has issued codes with other terms; give new terms a new pool code",
        )
    update = PoolUpdate(
        name=data.name,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        validity_days=data.validity_days,
    )
    pools.update_pool(session, programme=programme, code=data.code, changes=update)


def _reward(session: Session, programme: Programme, data: RewardIn, index: int) -> None:
    try:
        existing = service.find(session, programme=programme, ref=data.code, lock=True)
    except NotFound:
        existing = None
    if existing is None:
        service.create(session, programme=programme, data=data)
        return
    if existing.kind != data.kind:
        raise ValidationFailed.on(
            ("rewards", index, "kind"), f"reward {data.code!r} is a {existing.kind}"
        )
    changes = data.model_dump(exclude={"code", "kind", "stock"}, exclude_unset=False)
    service.update(
        session, programme=programme, reward_id=existing.id, changes=RewardUpdate(**changes)
    )
