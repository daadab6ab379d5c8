"""Voucher pools: their discount and validity, and the codes that stock them.

A pool's codes are made from its pattern (``generate``), or imported. A stocked code is
``available`` until it is issued to a member; imported ``bearer`` codes are ``active`` at once
and anyone may use them (a code printed on a flyer). Codes are unique in a programme: the
database says so too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.models import Programme, Reward, Voucher, VoucherPool
from fidelia.rewards import codes
from fidelia.rewards.schemas import PoolIn, PoolOut, PoolUpdate

_CHUNK = 1000


def create_pool(session: Session, *, programme: Programme, data: PoolIn) -> VoucherPool:
    """A new pool; 409 if its code is taken."""
    if find_pool(session, programme=programme, code=data.code) is not None:
        raise Conflict(f"voucher pool {data.code!r} exists already")
    pool = VoucherPool(programme_id=programme.id, **data.model_dump())
    session.add(pool)
    session.flush()
    return pool


def update_pool(
    session: Session, *, programme: Programme, code: str, changes: PoolUpdate
) -> VoucherPool:
    """Rename the pool or change its validity (for codes issued from now on)."""
    pool = get_pool(session, programme=programme, code=code, lock=True)
    for name, value in changes.model_dump(exclude_unset=True).items():
        setattr(pool, name, value)
    if pool.valid_from and pool.valid_until and pool.valid_until <= pool.valid_from:
        raise ValidationFailed.on("valid_until", "must be after valid_from")
    pool.updated_at = utcnow()
    session.flush()
    return pool


def delete_pool(session: Session, *, programme: Programme, code: str) -> None:
    """Delete a pool that has no voucher and no reward; 409 otherwise."""
    pool = get_pool(session, programme=programme, code=code, lock=True)
    used = session.scalar(select(Voucher.id).where(Voucher.pool_id == pool.id).limit(1))
    reward = session.scalar(select(Reward.code).where(Reward.pool_id == pool.id).limit(1))
    if used is not None or reward is not None:
        raise Conflict(f"voucher pool {code!r} has codes or rewards; it cannot be deleted")
    session.delete(pool)
    session.flush()


def find_pool(
    session: Session, *, programme: Programme, code: str, lock: bool = False
) -> VoucherPool | None:
    query = select(VoucherPool).where(
        VoucherPool.programme_id == programme.id, VoucherPool.code == code
    )
    return session.scalar(query.with_for_update() if lock else query)


def get_pool(
    session: Session, *, programme: Programme, code: str, lock: bool = False
) -> VoucherPool:
    """The programme's pool ``code``; 404 if unknown."""
    pool = find_pool(session, programme=programme, code=code, lock=lock)
    if pool is None:
        raise NotFound(f"voucher pool {code!r} does not exist")
    return pool


def list_pools(session: Session, *, programme: Programme) -> list[VoucherPool]:
    query = select(VoucherPool).where(VoucherPool.programme_id == programme.id)
    return list(session.scalars(query.order_by(VoucherPool.code)))


def counts(session: Session, *, pool_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Vouchers of each pool by status."""
    out: dict[uuid.UUID, dict[str, int]] = {}
    rows = session.execute(
        select(Voucher.pool_id, Voucher.status, func.count())
        .where(Voucher.pool_id.in_(list(pool_ids)))
        .group_by(Voucher.pool_id, Voucher.status)
    )
    for pool_id, status, count in rows:
        out.setdefault(pool_id, {})[status] = int(count)
    return out


def validity(pool: VoucherPool, issued_at: datetime) -> tuple[datetime | None, datetime | None]:
    """When a code issued at ``issued_at`` is valid: the pool's dates, and ``validity_days``
    after issue if that ends earlier."""
    until = pool.valid_until
    if pool.validity_days is not None:
        relative = issued_at + timedelta(days=pool.validity_days)
        until = relative if until is None else min(until, relative)
    return pool.valid_from, until


def out(pool: VoucherPool, by_status: dict[str, int]) -> PoolOut:
    fields = {name: getattr(pool, name) for name in PoolOut.model_fields if name != "counts"}
    return PoolOut(**fields, counts=by_status)


def existing_codes(session: Session, programme: Programme, candidates: list[str]) -> set[str]:
    """Which of ``candidates`` the programme has already."""
    found: set[str] = set()
    for start in range(0, len(candidates), _CHUNK):
        chunk = candidates[start : start + _CHUNK]
        found.update(
            session.scalars(
                select(Voucher.code).where(
                    Voucher.programme_id == programme.id, Voucher.code.in_(chunk)
                )
            )
        )
    return found


def generate_codes(session: Session, *, programme: Programme, code: str, count: int) -> list[str]:
    """Stock the pool with ``count`` new codes from its pattern; returns them."""
    pool = get_pool(session, programme=programme, code=code, lock=True)
    if pool.pattern is None:
        raise Conflict(f"voucher pool {code!r} has no pattern; import its codes instead")
    made = codes.generate_many(pool.pattern, count, set())
    clashes = existing_codes(session, programme, made)
    while clashes:  # astronomically rare with 8+ random characters, but never a 500
        kept = [c for c in made if c not in clashes]
        fresh = codes.generate_many(pool.pattern, len(clashes), set(made) | clashes)
        clashes = existing_codes(session, programme, fresh)
        made = kept + fresh
    _insert(session, programme, pool, made, status="available", source="generated")
    return made


def import_codes(
    session: Session, *, programme: Programme, code: str, raw: list[str], bearer: bool
) -> list[str]:
    """Add imported codes to the pool; 422 for a malformed or repeated code, 409 if one
    exists already in the programme (nothing is imported then)."""
    pool = get_pool(session, programme=programme, code=code, lock=True)
    imported = codes.check_imported(raw)
    taken = existing_codes(session, programme, imported)
    if taken:
        shown = ", ".join(sorted(taken)[:5])
        raise Conflict(f"{len(taken)} codes exist already in this programme: {shown}")
    status = "active" if bearer else "available"
    _insert(session, programme, pool, imported, status=status, source="imported")
    return imported


def _insert(
    session: Session,
    programme: Programme,
    pool: VoucherPool,
    made: list[str],
    *,
    status: str,
    source: str,
) -> None:
    now = utcnow()
    active = status == "active"
    valid_from, valid_until = validity(pool, now) if active else (None, None)
    base: dict[str, Any] = {
        "programme_id": programme.id,
        "pool_id": pool.id,
        "status": status,
        "uses": 0,
        "max_uses": pool.max_uses,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "source": source,
        "issued_at": now if active else None,
        "created_at": now,
        "updated_at": now,
    }
    for start in range(0, len(made), _CHUNK):
        rows = [{**base, "id": uuid7(), "code": c} for c in made[start : start + _CHUNK]]
        session.execute(insert(Voucher), rows)
    session.flush()
