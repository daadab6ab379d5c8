"""Issuing vouchers set-based: a group of events, an import chunk or a redemption.

Design note
-----------
:func:`issue_many` issues what :func:`fidelia.rewards.vouchers.issue_voucher` issues for each
request in turn, with a few statements per call whatever the number of requests: the pools
named, the idempotency keys already used and the members (each only if needed) in one query
each; per pool, its stocked codes claimed in one query (``FOR UPDATE SKIP LOCKED``, so
concurrent issues never wait for each other and never get the same code); then one multi-row
statement each for the claimed codes (UPDATE), the fresh ones (INSERT) and the expiry jobs.

A fresh code is drawn from the pool's pattern and inserted with ``ON CONFLICT (programme, code)
DO NOTHING RETURNING``: a code that exists already (or that a concurrent transaction has just
taken) comes back missing and is drawn again, so uniqueness needs no lookup first and holds
under concurrency. A request whose pool is unknown, whose member is unknown or whose pool has
no code left fails alone with ``partial=True`` (the rules path reports it in the event's
outcome and issues the others); otherwise the first failure is raised before anything is
written. The vouchers come back as ORM objects attached to the session (no re-read).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from fidelia.errors import FideliaError, NotFound, ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.kit.attach import attached
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.models import Base, Member, Programme, Reward, Voucher, VoucherPool
from fidelia.notices import Notice, record_many
from fidelia.rewards import codes, pools
from fidelia.rewards.errors import PoolExhausted

EXPIRE_JOB = "rewards.voucher_expire"
SOURCES = ("redemption", "operator", "rule")
_CHUNK = 500  # rows per INSERT ... VALUES (17 columns: 8,500 parameters)
_VOUCHERS = Base.metadata.tables["vouchers"]
_VOUCHER_KEYS = tuple(column.key for column in _VOUCHERS.c)


@dataclass(frozen=True, slots=True)
class VoucherRequest:
    """One voucher to issue: of ``pool`` (a pool code, or a voucher reward's code; or the pool
    itself) to ``member_id`` (None: a bearer voucher). ``fresh_key``: the key is derived from a
    row created in this transaction (an event, a redemption), so it cannot have been used and
    is not looked up (the unique constraint still guards it)."""

    member_id: uuid.UUID | None
    pool: str | VoucherPool
    source: str
    idempotency_key: str
    source_id: str | None = None
    redemption_id: uuid.UUID | None = None
    fresh_key: bool = False


Issued = Voucher | FideliaError


def issue_many(
    session: Session,
    *,
    programme: Programme,
    requests: Sequence[VoucherRequest],
    now: datetime | None = None,
    partial: bool = False,
    members_known: bool = False,
    unstocked: Collection[uuid.UUID] = (),
    notices: list[Notice] | None = None,
) -> list[Issued]:
    """Issue one voucher per request, in order; a key used before (or earlier in
    ``requests``) gives the voucher issued for it. With ``partial``, a request that cannot
    be issued (404 pool or member, 409 :class:`PoolExhausted`) gets its error in its place
    and the others are issued; without, its error is raised and nothing is written.
    ``members_known``: the caller has checked (or locked) the members. ``unstocked``: pools
    the caller has seen without stocked codes in this transaction (no claim query for them).
    ``notices``: the ``voucher.issued`` notices are appended to it, for the caller to write
    with its own (else they are written here).
    """
    now = now or utcnow()
    for request in requests:
        if request.source not in SOURCES:
            raise ValidationFailed.on("source", f"one of {', '.join(SOURCES)}")
    out: list[Issued | None] = [None] * len(requests)
    earlier = _used_keys(session, programme, requests)
    found = _pools(session, programme, requests)
    missing = set() if members_known else _missing_members(session, programme, requests)
    todo: dict[uuid.UUID, list[int]] = {}  # pool id -> indexes of requests to issue
    first_of_key: dict[str, int] = {}
    for i, request in enumerate(requests):
        key = request.idempotency_key
        if key in earlier:
            out[i] = earlier[key]
        elif key in first_of_key:
            continue  # filled from the first request with this key, below
        elif isinstance(pool := found.get(_ref(request.pool)), FideliaError):
            out[i] = pool
        elif request.member_id in missing:
            out[i] = NotFound(f"member {request.member_id} does not exist")
        elif pool is not None:
            first_of_key[key] = i
            todo.setdefault(pool.id, []).append(i)
    pools_by_id = {p.id: p for p in found.values() if isinstance(p, VoucherPool)}
    claimed = {
        pool_id: [] if pool_id in unstocked else _claim(session, pool_id, len(indexes))
        for pool_id, indexes in todo.items()
    }
    for pool_id, indexes in todo.items():
        pool = pools_by_id[pool_id]
        if pool.pattern is None:
            for i in indexes[len(claimed[pool_id]) :]:
                out[i] = PoolExhausted(f"voucher pool {pool.code!r} has no code left to issue")
    if not partial:
        for result in out:
            if isinstance(result, FideliaError):
                raise result
    issued = _write(session, programme, requests, todo, pools_by_id, claimed, out, now)
    for i, request in enumerate(requests):
        if out[i] is None:  # a repeated key: the first request's voucher
            out[i] = out[first_of_key[request.idempotency_key]]
    _schedule(session, programme, issued)
    # rule vouchers are noticed by the intake with their event's other notices
    issued_notices = [
        Notice(
            "voucher.issued",
            v.member_id,
            v.issued_at or now,
            {"voucher_id": v.id, "code": v.code, "source": v.source, "source_id": v.source_id},
        )
        for v in issued
        if v.source != "rule"
    ]
    if notices is None:
        record_many(session, programme.id, issued_notices)
    else:
        notices += issued_notices
    return [result for result in out if result is not None]


def _ref(pool: str | VoucherPool) -> str:
    return pool if isinstance(pool, str) else f"\0{pool.id}"


def _used_keys(
    session: Session, programme: Programme, requests: Sequence[VoucherRequest]
) -> dict[str, Voucher]:
    keys = [r.idempotency_key for r in requests if not r.fresh_key]
    found: dict[str, Voucher] = {}
    for start in range(0, len(keys), _CHUNK):
        query = select(Voucher).where(
            Voucher.programme_id == programme.id,
            Voucher.idempotency_key.in_(keys[start : start + _CHUNK]),
        )
        found.update({v.idempotency_key: v for v in session.scalars(query) if v.idempotency_key})
    return found


def _pools(
    session: Session, programme: Programme, requests: Sequence[VoucherRequest]
) -> dict[str, VoucherPool | FideliaError]:
    """The pool of each reference: a pool's code, else a voucher reward's code; 404 if
    neither (``resolve_pool``), in two queries at most."""
    out: dict[str, VoucherPool | FideliaError] = {
        _ref(r.pool): r.pool for r in requests if isinstance(r.pool, VoucherPool)
    }
    refs = {r.pool for r in requests if isinstance(r.pool, str)}
    if refs:
        query = select(VoucherPool).where(
            VoucherPool.programme_id == programme.id, VoucherPool.code.in_(refs)
        )
        out.update({p.code: p for p in session.scalars(query)})
    rest = refs - out.keys()
    if rest:
        by_reward = (
            select(Reward.code, VoucherPool)
            .join(VoucherPool, VoucherPool.id == Reward.pool_id)
            .where(Reward.programme_id == programme.id, Reward.code.in_(rest))
        )
        out.update({code: pool for code, pool in session.execute(by_reward)})
    for ref in refs - out.keys():
        out[ref] = NotFound(f"voucher pool {ref!r} does not exist")
    return out


def _missing_members(
    session: Session, programme: Programme, requests: Sequence[VoucherRequest]
) -> set[uuid.UUID]:
    wanted = {r.member_id for r in requests if r.member_id is not None and r.redemption_id is None}
    if not wanted:
        return set()
    query = select(Member.id).where(Member.programme_id == programme.id, Member.id.in_(wanted))
    return wanted - set(session.scalars(query))


def _claim(session: Session, pool_id: uuid.UUID, count: int) -> list[tuple[uuid.UUID, str]]:
    """Up to ``count`` stocked codes of the pool, locked; codes other transactions are
    claiming are skipped, not waited for."""
    query = (
        select(Voucher.id, Voucher.code)
        .where(Voucher.pool_id == pool_id, Voucher.status == "available")
        .order_by(Voucher.id)
        .limit(count)
        .with_for_update(skip_locked=True)
    )
    return [(row.id, row.code) for row in session.execute(query)]


def _write(
    session: Session,
    programme: Programme,
    requests: Sequence[VoucherRequest],
    todo: dict[uuid.UUID, list[int]],
    pools_by_id: dict[uuid.UUID, VoucherPool],
    claimed: dict[uuid.UUID, list[tuple[uuid.UUID, str]]],
    out: list[Issued | None],
    now: datetime,
) -> list[Voucher]:
    """Write the vouchers of the requests still to issue (``out`` None), fill ``out`` with
    them and return them."""
    taken: list[dict[str, Any]] = []
    fresh: list[dict[str, Any]] = []
    made: list[tuple[int, dict[str, Any]]] = []  # (request index, row), in order
    new: list[Voucher] = []
    for pool_id, indexes in todo.items():
        pool, stock = pools_by_id[pool_id], claimed[pool_id]
        valid_from, valid_until = pools.validity(pool, now)
        for n, i in enumerate(indexes):
            if out[i] is not None:
                continue
            request = requests[i]
            row = {
                "programme_id": programme.id,
                "pool_id": pool.id,
                "member_id": request.member_id,
                "redemption_id": request.redemption_id,
                "status": "active",
                "uses": 0,
                "max_uses": pool.max_uses,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "source": request.source,
                "source_id": request.source_id,
                "idempotency_key": request.idempotency_key,
                "issued_at": now,
                "updated_at": now,
            }
            if n < len(stock):
                row["id"], row["code"] = stock[n]
                taken.append(row)
            else:
                row.update(id=uuid7(), code=None, created_at=now, _pattern=pool.pattern)
                fresh.append(row)
            made.append((i, row))
    _update_claimed(session, taken)
    _insert_fresh(session, fresh)
    for i, row in made:
        out[i] = voucher = _attach(session, row)
        new.append(voucher)
    return new


def _attach(session: Session, row: dict[str, Any]) -> Voucher:
    """The voucher of ``row``, written, as a persistent ORM object, without a query: the
    claimed row's object if the session holds it, else a new one made persistent as the
    ORM's loader makes it (kit.attach: no constructor's attribute events, no cascades of
    ``session.add``)."""
    held = session.identity_map.get(Session.identity_key(Voucher, row["id"]))
    if isinstance(held, Voucher):
        for column, value in row.items():
            if not column.startswith("_"):
                set_committed_value(held, column, value)
        return held
    if "created_at" in row:  # a fresh code: the complete row
        return attached(session, Voucher, [row[key] for key in _VOUCHER_KEYS])
    # a claimed code: its creation time is not read, so it is left to load when asked for
    voucher: Voucher = Voucher.__mapper__.class_manager.new_instance()
    voucher.__dict__.update((k, v) for k, v in row.items() if not k.startswith("_"))
    make_transient_to_detached(voucher)
    session.add(voucher)
    return voucher


_CLAIM = (
    update(_VOUCHERS)
    .where(_VOUCHERS.c.id == bindparam("v_id"))
    .values(
        member_id=bindparam("v_member_id"),
        redemption_id=bindparam("v_redemption_id"),
        status="active",
        valid_from=bindparam("v_valid_from"),
        valid_until=bindparam("v_valid_until"),
        source=bindparam("v_source"),
        source_id=bindparam("v_source_id"),
        idempotency_key=bindparam("v_idempotency_key"),
        issued_at=bindparam("v_issued_at"),
        updated_at=bindparam("v_issued_at"),
    )
)
_CLAIM_COLUMNS = (
    "id", "member_id", "redemption_id", "valid_from", "valid_until", "source", "source_id",
    "idempotency_key", "issued_at",
)  # fmt: skip


def _update_claimed(session: Session, rows: list[dict[str, Any]]) -> None:
    """Hand the claimed stocked codes out: one executemany (one statement per row on the
    server; stocked pools are the rarer case, generated codes the common one)."""
    if rows:
        params = [{f"v_{c}": row[c] for c in _CLAIM_COLUMNS} for row in rows]
        session.execute(_CLAIM, params)


# INSERT ... ON CONFLICT (programme, code) DO NOTHING RETURNING code, for SQLite and PostgreSQL;
# with many rows, SQLAlchemy sends them as multi-row VALUES ("insertmanyvalues"), batched.
_FRESH = {
    postgres: dialect_insert(_VOUCHERS)
    .on_conflict_do_nothing(index_elements=["programme_id", "code"])
    .returning(_VOUCHERS.c.code)
    for postgres, dialect_insert in ((False, sqlite_insert), (True, pg_insert))
}
# the same for one row (a redemption's voucher), compiled once (kit.prepared: a fifth of a
# redemption's CPU on SQLite went to SQLAlchemy's execution of this statement)
_FRESH_ONE = {
    postgres: Prepared(
        dialect_insert(_VOUCHERS)
        .values({c: bindparam(f"v_{c.key}", type_=c.type) for c in _VOUCHERS.c})
        .on_conflict_do_nothing(index_elements=["programme_id", "code"])
    )  # no RETURNING: the row count says whether the one row went in (no result to read)
    for postgres, dialect_insert in ((False, sqlite_insert), (True, pg_insert))
}


def _insert_fresh(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new codes drawn from their pool's pattern; a code that exists already (or that a
    concurrent transaction has just inserted) is drawn again."""
    if not rows:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = _FRESH[postgres]
    drawn: set[str] = set()
    waiting = rows
    while waiting:
        for row in waiting:
            row["code"] = codes.generate(row["_pattern"])
            while row["code"] in drawn:
                row["code"] = codes.generate(row["_pattern"])
            drawn.add(row["code"])
        if len(waiting) == 1:
            one = _FRESH_ONE[postgres]
            values = {f"v_{key}": value for key, value in _columns(waiting[0]).items()}
            if session.autoflush:  # as a query would
                session.flush()
            inserted = {waiting[0]["code"]} if one.run(session, values) == 1 else set()
        else:
            found = session.execute(statement, [_columns(row) for row in waiting])
            inserted = set(found.scalars())
        waiting = [row for row in waiting if row["code"] not in inserted]


def _columns(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _schedule(session: Session, programme: Programme, issued: list[Voucher]) -> None:
    """One expiry job per voucher that ends, in one INSERT."""
    jobs.enqueue_many(
        session,
        [
            (EXPIRE_JOB, {"programme_id": str(programme.id), "voucher_id": str(v.id)},
             v.valid_until, programme.id)
            for v in issued
            if v.valid_until is not None
        ],
    )  # fmt: skip
