"""A large programme for the back-office and portal benchmarks, on SQLite and PostgreSQL alike.

:func:`add_members` adds ``n`` members to an existing programme (one built by
``fidelia.demo.setup``, so the document, wallets, tiers and rewards are real) with what the
member pages and the dashboard read: three identities each (email, card, phone, normalised as
the intake stores them), a points account with its balance, purchase events over the last
year, earn transactions (member and issuance entries, one lot each) and a tier for one member
in three. :func:`make_heavy` gives one of them a long history (thousands of events and
transactions). Rows are written in bulk (multi-row ``INSERT`` through SQLAlchemy Core, chunks of
``CHUNK``), not through the services: the point is the volume the pages read, fast to build.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text

from fidelia.db import Database
from fidelia.ledger import repository as ledger_repo
from fidelia.models import (
    Account,
    Entry,
    Event,
    LedgerTransaction,
    Lot,
    Member,
    MemberIdentity,
    MemberTier,
    Programme,
    Wallet,
)

CHUNK = 5_000
EVENTS_PER_MEMBER = 3
EARNS_PER_MEMBER = 2
TIERS = ("silver", "gold", "platinum")


@dataclass(frozen=True)
class Population:
    members: int
    events: int
    transactions: int
    first_id: uuid.UUID


def email(i: int) -> str:
    return f"member{i}@bench.example"


def card(i: int) -> str:
    return f"BENCH-{i:08d}"


def phone(i: int) -> str:
    return f"+3361{i:07d}"  # a valid French mobile number in E.164


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(database: Database, table: Any, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for batch in _chunks(rows):
        with database.transaction() as session:
            session.execute(insert(table), batch)
        count += len(batch)
    return count


def _ledger(
    programme: Programme,
    wallet: Wallet,
    issued: uuid.UUID,
    member_id: uuid.UUID,
    account_id: uuid.UUID,
    when: datetime,
    amount: int,
    key: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    tx, lot = uuid.uuid4(), uuid.uuid4()
    transaction: dict[str, Any] = {
        "id": tx, "programme_id": programme.id, "wallet_id": wallet.id, "member_id": member_id,
        "kind": "earn", "idempotency_key": key, "source_type": "event", "source_id": key,
        "rule_id": "purchase-points", "occurred_at": when, "posted_at": when, "details": {},
    }  # fmt: skip
    entries: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "programme_id": programme.id, "transaction_id": tx,
         "account_id": account_id, "lot_id": lot, "amount": amount, "effective_at": when},
        {"id": uuid.uuid4(), "programme_id": programme.id, "transaction_id": tx,
         "account_id": issued, "lot_id": None, "amount": -amount, "effective_at": when},
    ]  # fmt: skip
    lot_row: dict[str, Any] = {
        "id": lot, "programme_id": programme.id, "wallet_id": wallet.id,
        "account_id": account_id, "transaction_id": tx, "amount": amount, "remaining": amount,
        "available_at": when, "expires_at": when + timedelta(days=730), "created_at": when,
    }  # fmt: skip
    return transaction, entries, lot_row


def _wallet(database: Database, programme: Programme) -> tuple[Wallet, uuid.UUID]:
    with database.transaction() as session:
        wallet = session.scalar(
            select(Wallet).where(Wallet.programme_id == programme.id, Wallet.code == "points")
        )
        assert wallet is not None, "the programme has no points wallet"
        issued = ledger_repo.system_account_id(session, wallet=wallet, kind="issued")
        session.expunge(wallet)
    return wallet, issued


def add_members(
    database: Database, programme: Programme, n: int, *, now: datetime, start: int = 0
) -> Population:
    """Add members ``start`` .. ``start + n - 1`` (see the module's docstring)."""
    wallet, issued = _wallet(database, programme)
    ids = [uuid.uuid4() for _ in range(n)]
    accounts = [uuid.uuid4() for _ in range(n)]
    pid = programme.id
    year = 365 * 86400

    def members() -> Iterator[dict[str, Any]]:
        for k, member_id in enumerate(ids):
            i = start + k
            enrolled = now - timedelta(seconds=(i * 7919) % (2 * year))
            yield {
                "id": member_id, "programme_id": pid, "status": "active",
                "enrolment_channel": ("store", "web", "app")[i % 3],
                "enrolment_store": f"s{i % 40}", "enrolled_at": enrolled,
                "first_name": f"First{i}", "last_name": f"Last{i:06d}", "locale": "fr-FR",
                "attributes": {}, "created_at": enrolled, "updated_at": enrolled,
            }  # fmt: skip

    def identities() -> Iterator[dict[str, Any]]:
        for k, member_id in enumerate(ids):
            i = start + k
            for kind, value in (("email", email(i)), ("card", card(i)), ("phone", phone(i))):
                yield {
                    "id": uuid.uuid4(), "programme_id": pid, "member_id": member_id,
                    "kind": kind, "value": value, "created_at": now,
                }  # fmt: skip

    def events() -> Iterator[dict[str, Any]]:
        for k, member_id in enumerate(ids):
            i = start + k
            for e in range(EVENTS_PER_MEMBER):
                when = now - timedelta(seconds=((i * 31 + e * 104729) % year) + 60)
                yield _event(pid, member_id, f"b-{i}-{e}", when, f"{5 + (i + e) % 80}.50")

    def accounts_rows() -> Iterator[dict[str, Any]]:
        for k, member_id in enumerate(ids):
            i = start + k
            yield {
                "id": accounts[k], "programme_id": pid, "wallet_id": wallet.id,
                "member_id": member_id, "kind": "member",
                "available": 100 * EARNS_PER_MEMBER * (1 + i % 10),
                "lifetime_earned": 100 * EARNS_PER_MEMBER * (1 + i % 10), "created_at": now,
            }  # fmt: skip

    ledger = [
        _ledger(programme, wallet, issued, ids[k], accounts[k],
                now - timedelta(seconds=((start + k) * 17 + e * 7907) % year + 60),
                100 * (1 + (start + k) % 10), f"b-{start + k}-earn-{e}")
        for k in range(n) for e in range(EARNS_PER_MEMBER)
    ]  # fmt: skip

    def tiers() -> Iterator[dict[str, Any]]:
        for k, member_id in enumerate(ids):
            i = start + k
            if i % 3 == 0:
                yield {
                    "member_id": member_id, "programme_id": pid, "tier": TIERS[i % 9 // 3],
                    "source": "rule", "since": now - timedelta(days=i % 300), "metrics": {},
                    "updated_at": now,
                }  # fmt: skip

    written = _write(database, Member.__table__, members())
    _write(database, MemberIdentity.__table__, identities())
    events_written = _write(database, Event.__table__, events())
    _write(database, Account.__table__, accounts_rows())
    tx = _write(database, LedgerTransaction.__table__, (t for t, _e, _l in ledger))
    _write(database, Lot.__table__, (lot for _t, _e, lot in ledger))
    _write(database, Entry.__table__, (e for _t, es, _l in ledger for e in es))
    _write(database, MemberTier.__table__, tiers())
    _analyze(database)
    return Population(written, events_written, tx, ids[0])


def _event(
    pid: uuid.UUID, member_id: uuid.UUID, key: str, when: datetime, total: str
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "programme_id": pid, "idempotency_key": key, "fingerprint": "x",
        "type": "purchase", "occurred_at": when, "received_at": when, "member_id": member_id,
        "channel": "store", "store": "s1", "properties": {"total": total}, "outcome": {},
    }  # fmt: skip


def make_heavy(
    database: Database, programme: Programme, member_id: uuid.UUID, *, now: datetime,
    events: int, transactions: int,
) -> None:  # fmt: skip
    """Give ``member_id`` ``events`` more purchase events and ``transactions`` earn postings."""
    wallet, issued = _wallet(database, programme)
    with database.transaction() as session:
        account = ledger_repo.find_member_account(session, wallet=wallet, member_id=member_id)
        assert account is not None
        account_id = account.id
    rows = (
        _event(programme.id, member_id, f"heavy-{e}", now - timedelta(minutes=37 * e + 1), "9.90")
        for e in range(events)
    )
    _write(database, Event.__table__, rows)
    ledger = [
        _ledger(programme, wallet, issued, member_id, account_id,
                now - timedelta(minutes=53 * t + 1), 10, f"heavy-earn-{t}")
        for t in range(transactions)
    ]  # fmt: skip
    _write(database, LedgerTransaction.__table__, (t for t, _e, _l in ledger))
    _write(database, Lot.__table__, (lot for _t, _e, lot in ledger))
    _write(database, Entry.__table__, (e for _t, es, _l in ledger for e in es))
    with database.transaction() as session:
        found = session.get(Account, account_id)
        assert found is not None
        found.available += 10 * transactions
        found.lifetime_earned += 10 * transactions
    _analyze(database)


def _analyze(database: Database) -> None:
    """Statistics for the planner, and on PostgreSQL the vacuum the bulk load would otherwise
    trigger in the background while the pages are timed."""
    if database.engine.dialect.name == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return
    with database.transaction() as session:
        session.execute(text("ANALYZE"))
