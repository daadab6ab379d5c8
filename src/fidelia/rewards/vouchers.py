"""Issuing vouchers: by a redemption, by an operator, or by a rule effect.

Issuing hands the member a stocked code of the pool (``FOR UPDATE SKIP LOCKED``, so
concurrent issues never wait on each other) or, when the pool has none left, makes a fresh one
from its pattern. Issuance is idempotent by key: the same key returns the same voucher. One
voucher or many, it goes through the set-based :func:`fidelia.rewards.issuing.issue_many`.

Expiry is computed wherever it matters (validation at the till refuses a code past its
``valid_until`` whatever its stored status); a job at ``valid_until`` also records it on the
voucher and on the redemption that produced it, so that lists and reports show it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.models import Programme, Reward, Voucher, VoucherPool
from fidelia.rewards import pools
from fidelia.rewards.issuing import EXPIRE_JOB, SOURCES, VoucherRequest, issue_many
from fidelia.rewards.schemas import VoucherOut

__all__ = ["EXPIRE_JOB", "SOURCES", "issue", "issue_voucher", "resolve_pool"]


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
    Many at once: :func:`fidelia.rewards.issuing.issue_many`.
    """
    request = VoucherRequest(
        member_id, pool, source, idempotency_key, source_id, redemption_id
    )  # fmt: skip
    return _one(session, programme, request, now)


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
    # a redemption's voucher is new (its key comes from the redemption), its member checked
    fresh = redemption_id is not None
    request = VoucherRequest(
        member_id, pool, source, idempotency_key, source_id, redemption_id, fresh_key=fresh
    )
    return _one(session, programme, request, now)


def _one(
    session: Session, programme: Programme, request: VoucherRequest, now: datetime | None
) -> Voucher:
    (voucher,) = issue_many(session, programme=programme, requests=[request], now=now)
    assert isinstance(voucher, Voucher)  # without partial, a failure is raised
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
