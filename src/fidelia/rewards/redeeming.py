"""Redeeming a reward: the hot path of the catalogue, in a fixed number of statements.

Design note
-----------
The member row is locked first (every write of a member's redemptions and state holds it);
one query then reads the reward, its voucher pool, the redemption made earlier with the same
key, the member's rules state and whether the pool has a code in stock, all as of after that
lock. A reward with first-N scarcity is locked to count the members served; stock is taken
by one conditional ``UPDATE ... SET stock = stock - n WHERE stock >= n RETURNING``, so of two
redemptions of the last unit exactly one gets a row back (the other is :class:`OutOfStock`),
and rewards without scarcity are never locked. Lock order: member, reward, ledger accounts.
The points are spent set-based (:func:`fidelia.ledger.spends.spend_many`), the redemption is
inserted once, complete (its ids, spend and voucher expiry are known before), as one Core row
attached to the session without a re-read, and its voucher comes from
:func:`fidelia.rewards.issuing.issue_many`. Any failure leaves the caller's transaction to
roll back: nothing stands half done.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Uuid, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.attach import attached
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.ledger import operations
from fidelia.ledger.spends import SpendRequest, spend_many
from fidelia.ledger.wallets import currency_scale
from fidelia.models import Base, Programme, Redemption, Reward, VoucherPool
from fidelia.notices import Notice, record_many
from fidelia.rewards import eligibility, pools
from fidelia.rewards.errors import IdempotencyMismatch, NotRedeemable, OutOfStock
from fidelia.rewards.issuing import VoucherRequest, issue_many

_REDEMPTIONS = Base.metadata.tables["redemptions"]
_REWARDS = Base.metadata.tables["rewards"]


def redeem(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    reward: str,
    idempotency_key: str,
    quantity: int = 1,
    fulfilment: dict[str, object] | None = None,
    now: datetime | None = None,
) -> Redemption:
    """Redeem ``quantity`` units of ``reward`` (code or id) for the member.

    Raises 404 (member, reward), 409 :class:`OutOfStock`, :class:`NotRedeemable` (window, tier,
    condition, limit, first-N), ``InsufficientPoints``, :class:`IdempotencyMismatch` (the key
    was used for another member or reward); the caller's transaction must then roll back.
    """
    now = now or utcnow()
    read = _read(session, programme, reward, member_id, idempotency_key)
    found = read.reward
    if found.first_n is not None:
        # first-N: the members served are counted under the reward's lock; other rewards stay
        # unlocked, so members redeeming them never wait for each other (stock: _take_stock)
        locked = session.get(Reward, found.id, with_for_update=True, populate_existing=True)
        assert locked is not None  # rewards are archived, never deleted
        found = locked
    if read.first_id is not None:
        first = session.get(Redemption, read.first_id)
        assert first is not None
        if (first.member_id, first.reward_id) != (member_id, found.id):
            raise IdempotencyMismatch(f"key {idempotency_key!r} redeemed another reward or member")
        return first
    if quantity > 1 and found.kind == "voucher":
        raise ValidationFailed.on("quantity", "a voucher reward is redeemed one at a time")
    ctx = eligibility.context_of(read.profile, read.state)
    ctx = eligibility.with_extras(
        session, programme=programme, rewards=[found], member_id=member_id, ctx=ctx
    )  # member.segments and traits.*, when the condition names them
    _check(session, programme, found, ctx, member_id, quantity, now)
    if found.stock is not None:
        _take_stock(session, found, quantity)
    row = _row(programme, found, member_id, idempotency_key, quantity, now)
    row["points"] = eligibility.price(found, ctx["member"]["tier"]) * quantity
    row["fulfilment"] = dict(fulfilment or {})
    notices: list[Notice] = []  # all written at the end, in one statement
    (row["spend_transaction_id"],) = spend_many(
        session,
        programme=programme,
        spends=[
            SpendRequest(
                member_id,
                row["points"],
                idempotency_key=f"redemption:{row['id']}",
                source_id=str(row["id"]),
                fresh_key=True,
            )
        ],
        now=now,
        notices=notices,
    )
    if found.kind == "cashback" and found.value is not None:
        record_many(session, programme.id, notices)  # the spend's notice before the credit's
        notices.clear()
        row["cashback_transaction_id"] = _cashback(session, programme, found, row, now)
        row["status"], row["used_at"] = "used", now
    if found.kind == "voucher" and read.pool is not None:
        row["expires_at"] = pools.validity(read.pool, now)[1]
    redemption = _insert(session, row)
    if found.kind == "voucher" and read.pool is not None:
        _issue_voucher(session, programme, read, redemption, now, notices)
    data = {"redemption_id": redemption.id, "reward": found.code, "kind": found.kind}
    data |= {"quantity": quantity, "points": row["points"]}
    notices.append(Notice("reward.redeemed", member_id, now, data))
    record_many(session, programme.id, notices)
    return redemption


@dataclass(frozen=True, slots=True)
class _Read:
    reward: Reward
    pool: VoucherPool | None
    first_id: uuid.UUID | None  # the redemption made earlier with the same key
    profile: dict[str, Any]  # the member's columns a reward condition reads
    state: dict[str, Any]  # the rules engine's state of the member
    stocked: bool  # whether the pool had a code in stock


_MEMBERS = Base.metadata.tables["members"]
_PROFILE = [_MEMBERS.c[name] for name in eligibility.PROFILE]


_POOLS, _VOUCHERS = Base.metadata.tables["voucher_pools"], Base.metadata.tables["vouchers"]
_STATES = Base.metadata.tables["member_states"]


# The columns a redemption reads of the reward (eligibility, price, stock, its row) and of
# its pool (a code's pattern, uses and validity): the objects made of them have only these
# loaded, and another attribute of theirs raises DetachedInstanceError. Reading every column
# cost a third more in SQLAlchemy's and the driver's per-column work (issue 18).
_REWARD_READ = (
    "id", "code", "kind", "cost_points", "cost_by_tier", "stock", "available_from",
    "available_until", "eligible_tiers", "condition", "limit_per_member", "first_n",
    "archived", "pool_id", "association", "value", "updated_at",
)  # fmt: skip
_POOL_READ = ("id", "code", "pattern", "max_uses", "valid_from", "valid_until", "validity_days")


def _reading(which: ColumnElement[bool], *, with_member: bool) -> Prepared:
    """The query of :func:`_read`, built and compiled once (``which``: the reward by code or
    by id; ``with_member``: the member's profile joined, for SQLite). Plain columns, not ORM
    entities: the reward and the pool are made objects by :func:`_detached`."""
    programme_id = bindparam("programme_id", type_=Uuid())
    first = select(_REDEMPTIONS.c.id).where(
        _REDEMPTIONS.c.programme_id == programme_id,
        _REDEMPTIONS.c.idempotency_key == bindparam("key"),
    )
    state = select(_STATES.c.state).where(_STATES.c.member_id == bindparam("member_id"))
    stocked = (
        select(_VOUCHERS.c.id)
        .where(_VOUCHERS.c.pool_id == _REWARDS.c.pool_id, _VOUCHERS.c.status == "available")
        .limit(1)
        .correlate(_REWARDS)
    )
    subqueries = (q.scalar_subquery() for q in (first, state, stocked))
    read = [_REWARDS.c[name] for name in _REWARD_READ] + [_POOLS.c[name] for name in _POOL_READ]
    query = select(*read, *subqueries).select_from(_REWARDS)
    if with_member:
        member = and_(
            _MEMBERS.c.id == bindparam("member_id"), _MEMBERS.c.programme_id == programme_id
        )
        query = query.join(_MEMBERS, member).add_columns(*_PROFILE)
    query = query.outerjoin(_POOLS, _POOLS.c.id == _REWARDS.c.pool_id)
    return Prepared(query.where(_REWARDS.c.programme_id == programme_id, which))


_BY_CODE = _REWARDS.c.code == bindparam("ref")
_BY_ID = _REWARDS.c.id == bindparam("reward_id", type_=Uuid())
_READ = {
    (by_id, with_member): _reading(_BY_ID if by_id else _BY_CODE, with_member=with_member)
    for by_id in (False, True)
    for with_member in (False, True)
}


def _read(
    session: Session, programme: Programme, ref: str, member_id: uuid.UUID, key: str
) -> _Read:
    """The member's profile, locked, then the reward (by id or code) and its pool with what
    the redemption needs to know first, in one query. On PostgreSQL that query runs after
    the member's lock, in a statement of its own, so that the key and the state it reads are
    those of the member's last committed write (a statement sees the rows as they were when
    it started, even if it waited for a lock). On SQLite, where one writer at a time holds
    the database, the member's row is read by the same query."""
    params: dict[str, Any] = {"programme_id": programme.id, "key": key, "member_id": member_id}
    try:
        params["reward_id"] = uuid.UUID(ref)
        by_id = True
    except ValueError:
        params["ref"] = ref
        by_id = False
    alone = session.get_bind().dialect.name == "postgresql"
    profile = _lock_member(session, programme, member_id) if alone else None
    found = _READ[(by_id, not alone)].rows(session, params)
    if not found:
        if profile is None:
            _lock_member(session, programme, member_id)  # 404 for the member first
        raise NotFound(f"reward {ref!r} does not exist")
    row = found[0]
    pools_end = len(_REWARD_READ) + len(_POOL_READ)
    reward = _detached(Reward, _REWARD_READ, row[: len(_REWARD_READ)])
    pool_row = row[len(_REWARD_READ) : pools_end]
    pool = _detached(VoucherPool, _POOL_READ, pool_row) if pool_row[0] is not None else None
    first_id, member_state, stock_id = row[pools_end : pools_end + 3]
    if profile is None:
        profile = dict(zip(eligibility.PROFILE, row[pools_end + 3 :], strict=True))
    state = dict(member_state or {})
    return _Read(reward, pool, first_id, profile, state, stock_id is not None)


_Model = TypeVar("_Model", Reward, VoucherPool)


def _detached(model: type[_Model], names: Sequence[str], values: Sequence[Any]) -> _Model:
    """The columns ``names`` of a row as a detached object of ``model``, the values it would
    load, without the ORM's loading; not added to the session (which may hold the same row
    already). The values go into the instance's dict as the ORM's loader puts them (column
    and attribute names are the same in these models), then are committed."""
    found: _Model = model.__mapper__.class_manager.new_instance()
    found.__dict__.update(zip(names, values, strict=True))
    make_transient_to_detached(found)
    return found


# compiled once and run through the driver (kit.prepared), as the read that follows it
_LOCK_MEMBER = Prepared(
    select(*_PROFILE)
    .where(
        _MEMBERS.c.id == bindparam("member_id", type_=Uuid()),
        _MEMBERS.c.programme_id == bindparam("programme_id", type_=Uuid()),
    )
    .with_for_update()
)


def _lock_member(session: Session, programme: Programme, member_id: uuid.UUID) -> dict[str, Any]:
    """The member's profile (what a reward condition reads), the row locked until the end of
    the transaction, as ``members.get_for_update`` locks it; 404 if unknown."""
    found = _LOCK_MEMBER.rows(session, {"member_id": member_id, "programme_id": programme.id})
    if not found:
        raise NotFound(f"member {member_id} does not exist")
    return dict(zip(eligibility.PROFILE, found[0], strict=True))


def _check(
    session: Session,
    programme: Programme,
    reward: Reward,
    ctx: dict[str, object],
    member_id: uuid.UUID,
    quantity: int,
    now: datetime,
) -> None:
    held = 0
    if reward.limit_per_member is not None or reward.first_n is not None:
        units = eligibility.units_of_member(session, member_id=member_id, reward_ids=[reward.id])
        held = units.get(reward.id, 0)
    served = 0
    if reward.first_n is not None and held == 0:
        served = eligibility.members_served(session, reward_ids=[reward.id]).get(reward.id, 0)
    why = eligibility.reasons(
        programme, reward, ctx=ctx, now=now, quantity=quantity, held=held, served=served
    )
    if why == ["out_of_stock"]:
        raise OutOfStock(f"reward {reward.code!r} has {reward.stock} left, {quantity} wanted")
    if why:
        raise NotRedeemable(f"reward {reward.code!r} cannot be redeemed", reasons=why)


def _value_minor(programme: Programme, reward: Reward, quantity: int) -> int | None:
    if reward.value is None:
        return None
    minor = (reward.value * quantity).scaleb(currency_scale(programme.currency))
    return int(minor.to_integral_value())


def _take_stock(session: Session, reward: Reward, quantity: int) -> None:
    """Take ``quantity`` units of the reward's stock, or raise :class:`OutOfStock` if another
    redemption took them since the reward was read. The row stays locked until the end of the
    transaction; a stock move is not an edit of the reward (``updated_at`` stays)."""
    left = session.scalar(
        update(_REWARDS)
        .where(_REWARDS.c.id == reward.id, _REWARDS.c.stock >= quantity)
        .values(stock=_REWARDS.c.stock - quantity, updated_at=_REWARDS.c.updated_at)
        .returning(_REWARDS.c.stock)
    )
    if left is None:
        raise OutOfStock(f"reward {reward.code!r} has fewer than {quantity} left")
    set_committed_value(reward, "stock", left)
    held = session.identity_map.get(Session.identity_key(Reward, reward.id))
    if held is not None and held is not reward:  # the caller's object must not read stale
        set_committed_value(held, "stock", left)


def _row(
    programme: Programme,
    reward: Reward,
    member_id: uuid.UUID,
    key: str,
    quantity: int,
    now: datetime,
) -> dict[str, Any]:
    """The redemption's row, issued (what is left to fill: points, spend, cashback, expiry)."""
    return {
        "id": uuid7(),
        "programme_id": programme.id,
        "member_id": member_id,
        "reward_id": reward.id,
        "kind": reward.kind,
        "status": "issued",
        "idempotency_key": key,
        "quantity": quantity,
        "points": 0,
        "value_minor": _value_minor(programme, reward, quantity),
        "association": reward.association,
        "spend_transaction_id": None,
        "refund_transaction_id": None,
        "cashback_transaction_id": None,
        "fulfilment": {},
        "requested_at": now,
        "issued_at": now,
        "used_at": None,
        "expires_at": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "updated_at": now,
    }


# the redemption's INSERT of one complete row, compiled once (kit.prepared): on PostgreSQL a
# one-row insert_rows goes through SQLAlchemy's execution, several times the driver's work
_INSERT = Prepared(
    insert(_REDEMPTIONS).values({c: bindparam(f"r_{c.key}", type_=c.type) for c in _REDEMPTIONS.c})
)


def _insert(session: Session, row: dict[str, Any]) -> Redemption:
    """Insert the row and return it as a persistent object (no re-read)."""
    try:
        _INSERT.run(session, {f"r_{key}": value for key, value in row.items()})
    except IntegrityError as exc:  # the same key, committed meanwhile for another member
        # the caller rolls back the whole transaction, so no savepoint is needed
        key = row["idempotency_key"]
        raise IdempotencyMismatch(f"key {key!r} was used by a concurrent redemption") from exc
    # persistent without the loader nor session.add's cascades (kit.attach)
    return attached(session, Redemption, [row[column.key] for column in _REDEMPTIONS.c])


def _cashback(
    session: Session, programme: Programme, reward: Reward, row: dict[str, Any], now: datetime
) -> uuid.UUID:
    """Credit a cashback conversion to the member's cashback wallet; its transaction id."""
    assert reward.value is not None
    credit = operations.award(
        session,
        programme=programme,
        member_id=row["member_id"],
        wallet="cashback",
        amount=reward.value * row["quantity"],
        idempotency_key=f"redemption:{row['id']}:cashback",
        source_type="redemption",
        source_id=str(row["id"]),
        now=now,
    )
    return credit.id


def _issue_voucher(
    session: Session,
    programme: Programme,
    read: _Read,
    redemption: Redemption,
    now: datetime,
    notices: list[Notice],
) -> None:
    assert read.pool is not None
    request = VoucherRequest(
        redemption.member_id,
        read.pool,
        "redemption",
        idempotency_key=f"redemption:{redemption.id}",
        source_id=str(redemption.id),
        redemption_id=redemption.id,
        fresh_key=True,
    )
    issue_many(
        session,
        programme=programme,
        requests=[request],
        now=now,
        members_known=True,
        unstocked=() if read.stocked else (read.pool.id,),
        notices=notices,
    )
