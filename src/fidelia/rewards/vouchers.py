"""Issuing vouchers: by a redemption, by an operator, or by a rule effect.

Issuing hands the member a stocked code of the pool (``FOR UPDATE SKIP LOCKED``, so
concurrent issues never wait on each other) or, when the pool has none left, makes a fresh one
from its pattern. Issuance is idempotent by key: the same key returns the same voucher.

Expiry is computed wherever it matters (validation at the till refuses a code past its
``valid_until`` whatever its stored status); a job at ``valid_until`` also records it on the
voucher and on the redemption that produced it, so that lists and reports show it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.models import Programme, Reward, Voucher, VoucherPool
from fidelia.rewards import codes, pools
from fidelia.rewards.errors import PoolExhausted
from fidelia.rewards.schemas import VoucherOut

EXPIRE_JOB = "rewards.voucher_expire"
SOURCES = ("redemption", "operator", "rule")


def resolve_pool(session: Session, *, programme: Programme, ref: str) -> VoucherPool:
    """The pool ``ref``, or the pool of the voucher reward whose code is ``ref`` (the rules
    engine's ``IssueVoucher`` effect names a catalogue reward); 404 if neither exists."""
    pool = pools.find_pool(session, programme=programme, code=ref)
    if pool is not None:
        return pool
    pool_id = session.scalar(
        select(Reward.pool_id).where(Reward.programme_id == programme.id, Reward.code == ref)
    )
    found = session.get(VoucherPool, pool_id) if pool_id is not None else None
    return found or pools.get_pool(session, programme=programme, code=ref)


def issue_voucher(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID | None,
    pool: str,
    source: str,
    idempotency_key: str,
    now: datetime | None = None,
    source_id: str | None = None,
    redemption_id: uuid.UUID | None = None,
) -> Voucher:
    """Issue one voucher of ``pool`` (a pool code, or a voucher reward's code) to
    ``member_id`` (None: a bearer voucher); ``source`` is redemption, operator or rule.

    The same ``idempotency_key`` returns the voucher issued the first time. Raises 404 for an
    unknown pool or member, 409 :class:`PoolExhausted` when an imported pool has no code left.
    """
    if source not in SOURCES:
        raise ValidationFailed.on("source", f"one of {', '.join(SOURCES)}")
    existing = _by_key(session, programme, idempotency_key)
    if existing is not None:
        return existing
    return issue(
        session,
        programme=programme,
        member_id=member_id,
        pool=resolve_pool(session, programme=programme, ref=pool),
        source=source,
        idempotency_key=idempotency_key,
        now=now,
        source_id=source_id,
        redemption_id=redemption_id,
    )


def _by_key(session: Session, programme: Programme, key: str) -> Voucher | None:
    return session.scalar(
        select(Voucher).where(Voucher.programme_id == programme.id, Voucher.idempotency_key == key)
    )


def issue(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID | None,
    pool: VoucherPool,
    source: str,
    idempotency_key: str,
    now: datetime | None = None,
    source_id: str | None = None,
    redemption_id: uuid.UUID | None = None,
) -> Voucher:
    """:func:`issue_voucher` for a pool already found."""
    now = now or utcnow()
    if redemption_id is None:  # a redemption's voucher is new, and its member checked
        existing = _by_key(session, programme, idempotency_key)
        if existing is not None:
            return existing
    found = pool
    if member_id is not None and redemption_id is None:
        members.get(session, programme=programme, member_id=member_id)
    voucher = _stocked(session, found) or _fresh(session, programme, found, now)
    voucher.member_id, voucher.redemption_id = member_id, redemption_id
    voucher.status, voucher.issued_at, voucher.updated_at = "active", now, now
    voucher.valid_from, voucher.valid_until = pools.validity(found, now)
    voucher.source, voucher.source_id = source, source_id
    voucher.idempotency_key = idempotency_key
    session.flush()
    if voucher.valid_until is not None:
        jobs.enqueue(
            session,
            kind=EXPIRE_JOB,
            payload={"programme_id": str(programme.id), "voucher_id": str(voucher.id)},
            due_at=voucher.valid_until,
            programme_id=programme.id,
        )
    return voucher


def _stocked(session: Session, pool: VoucherPool) -> Voucher | None:
    query = (
        select(Voucher)
        .where(Voucher.pool_id == pool.id, Voucher.status == "available")
        .order_by(Voucher.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return session.scalar(query)


def _fresh(session: Session, programme: Programme, pool: VoucherPool, now: datetime) -> Voucher:
    if pool.pattern is None:
        raise PoolExhausted(f"voucher pool {pool.code!r} has no code left to issue")
    code = codes.generate(pool.pattern)
    while pools.existing_codes(session, programme, [code]):
        code = codes.generate(pool.pattern)
    voucher = Voucher(
        programme_id=programme.id,
        pool_id=pool.id,
        code=code,
        status="available",
        uses=0,
        max_uses=pool.max_uses,
        source="generated",
        created_at=now,
    )
    session.add(voucher)
    return voucher


def vouchers_of_member(
    session: Session, *, programme: Programme, member_id: uuid.UUID, status: str | None = None
) -> list[Voucher]:
    """The member's vouchers, newest first."""
    members.get(session, programme=programme, member_id=member_id)
    query = select(Voucher).where(
        Voucher.programme_id == programme.id, Voucher.member_id == member_id
    )
    if status is not None:
        query = query.where(Voucher.status == status)
    return list(session.scalars(query.order_by(Voucher.issued_at.desc(), Voucher.id.desc())))


def out(session: Session, voucher: Voucher, now: datetime | None = None) -> VoucherOut:
    """The API shape; an active voucher past its end shows as expired."""
    pool = session.get(VoucherPool, voucher.pool_id)
    assert pool is not None
    status = voucher.status
    if status == "active" and voucher.valid_until and voucher.valid_until <= (now or utcnow()):
        status = "expired"
    return VoucherOut(
        id=voucher.id,
        code=voucher.code,
        pool=pool.code,
        member_id=voucher.member_id,
        redemption_id=voucher.redemption_id,
        status=status,
        uses=voucher.uses,
        max_uses=voucher.max_uses,
        valid_from=voucher.valid_from,
        valid_until=voucher.valid_until,
        source=voucher.source,
        source_id=voucher.source_id,
        issued_at=voucher.issued_at,
        discount_type=pool.discount_type,
        discount_value=pool.discount_value,
    )
