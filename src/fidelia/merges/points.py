"""The duplicate's wallets move to the survivor through ledger postings, and back.

Design note
-----------
One ``transfer`` posting per wallet (key ``merge:<merge>:<wallet>``) takes what is left of
each of the duplicate's lots (its pending part in the pending bucket, the rest in the
available one) and opens a lot on the survivor's account with the same expiry and the same
pending date, so that no point gains or loses validity and the new lots get their own release
and expiry jobs from the posting function. Overdue lots move too (their expiry job expires
them on the survivor). Lifetime counters stay where they were earned: a transfer is neither
an earn nor a spend. A duplicate in debt (an ``allow_debt`` wallet below zero) is refused:
the debt would have to be taken from the survivor's lots, which an unmerge could not undo.

An unmerge takes back what is left of the lots the merge opened (key
``unmerge:<merge>:<wallet>``) into new lots of the duplicate, again with their dates. What the
survivor spent, or saw expire or returned, from those lots meanwhile is not taken from the
survivor's other lots: it is the shortfall, reported per wallet and kept on the merge.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.ledger import repository as repo
from fidelia.ledger.service import Leg, NewLot, Posting, post
from fidelia.ledger.wallets import from_minor
from fidelia.merges.errors import DuplicateInDebt
from fidelia.models import Account, Lot, Programme, Wallet


def check_no_debt(session: Session, *, duplicate_id: uuid.UUID) -> None:
    """Refuse (409) a duplicate with a balance below zero in any wallet."""
    found = session.execute(
        select(Wallet.code, Account.available)
        .join(Wallet, Wallet.id == Account.wallet_id)
        .where(Account.member_id == duplicate_id, Account.available < 0)
        .order_by(Wallet.code)
    ).first()
    if found is not None:
        raise DuplicateInDebt(
            f"the duplicate owes {-found[1]} (minor units) in wallet {found[0]!r}: settle the "
            "debt (an adjustment) before merging"
        )


def _wallets(session: Session, member_id: uuid.UUID) -> list[Wallet]:
    query = (
        select(Wallet)
        .join(Account, Account.wallet_id == Wallet.id)
        .where(Account.member_id == member_id)
        .order_by(Wallet.id)
    )
    return list(session.scalars(query))


def _lots(session: Session, query: Any) -> list[Lot]:
    return list(session.scalars(query.execution_options(populate_existing=True)))


def _moves(lot: Lot, source: uuid.UUID, target: uuid.UUID) -> list[tuple[Leg, Leg, bool, int]]:
    """Legs taking what is left of ``lot`` (pending part, then available part) to a new lot of
    ``target`` with the lot's dates."""
    out = []
    for pending, amount in ((True, lot.pending), (False, lot.remaining - lot.pending)):
        if amount > 0:
            opens = NewLot(lot.expires_at, lot.available_at)
            out.append(
                (
                    Leg(source, -amount, pending, lot),
                    Leg(target, amount, pending, opens=opens),
                    pending,
                    amount,
                )
            )
    return out


def _transfer(
    session: Session,
    programme: Programme,
    wallet: Wallet,
    *,
    frm: uuid.UUID,
    to: uuid.UUID,
    lots_of: Any,
    key: str,
    merge_id: uuid.UUID,
    now: datetime,
) -> tuple[uuid.UUID | None, list[dict[str, Any]]]:
    """Move the lots ``lots_of(source account)`` selects from member ``frm`` to ``to``."""
    accounts = repo.lock_member_accounts(
        session, programme=programme, wallet=wallet, member_ids=[frm, to]
    )
    source, target = accounts[frm], accounts[to]
    moves = [
        m for lot in _lots(session, lots_of(source)) for m in _moves(lot, source.id, target.id)
    ]
    if not moves:
        return None, []
    posting = Posting(
        wallet=wallet,
        kind="transfer",
        idempotency_key=key,
        legs=[leg for out, into, _, _ in moves for leg in (out, into)],
        occurred_at=now,
        member_id=to,
        source_type="merge",
        source_id=str(merge_id),
        details={"merge_id": str(merge_id), "from_member_id": str(frm), "to_member_id": str(to)},
    )
    txn = post(session, programme=programme, posting=posting, accounts=accounts, now=now)
    opened = session.scalars(select(Lot.id).where(Lot.transaction_id == txn.id).order_by(Lot.id))
    lots = [
        {"from": str(out.lot.id if out.lot else ""), "to": str(new), "pending": p, "amount": n}
        for (out, _, p, n), new in zip(moves, opened, strict=True)
    ]
    return txn.id, lots


def move_points(
    session: Session,
    *,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    merge_id: uuid.UUID,
    now: datetime,
) -> list[dict[str, Any]]:
    """Move every lot of the duplicate to the survivor; what moved, per wallet."""
    moved = []
    for wallet in _wallets(session, duplicate_id):

        def lots_of(account: Account) -> Any:
            return (
                select(Lot)
                .where(Lot.account_id == account.id, Lot.remaining > 0)
                .order_by(Lot.expires_at.is_(None), Lot.expires_at, Lot.id)
            )

        txn_id, lots = _transfer(
            session,
            programme,
            wallet,
            frm=duplicate_id,
            to=survivor_id,
            lots_of=lots_of,
            key=f"merge:{merge_id}:{wallet.code}",
            merge_id=merge_id,
            now=now,
        )
        if txn_id is not None:
            total = sum(lot["amount"] for lot in lots)
            moved.append(
                {
                    "wallet": wallet.code,
                    "wallet_id": str(wallet.id),
                    "transaction_id": str(txn_id),
                    "amount": total,
                    "moved": str(from_minor(wallet, total)),
                    "lots": lots,
                }
            )
    return moved


def return_points(
    session: Session,
    *,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    merge_id: uuid.UUID,
    moved: list[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """Give the duplicate back what is left of the lots the merge opened; per wallet, what
    moved, what came back and the shortfall (in minor units and in the wallet's unit)."""
    report = []
    for item in moved:
        wallet = session.get(Wallet, uuid.UUID(item["wallet_id"]))
        assert wallet is not None
        txn_id = uuid.UUID(item["transaction_id"])

        def lots_of(account: Account, txn_id: uuid.UUID = txn_id) -> Any:
            return (
                select(Lot)
                .where(Lot.transaction_id == txn_id, Lot.account_id == account.id)
                .where(Lot.remaining > 0)
                .order_by(Lot.id)
            )

        back_id, lots = _transfer(
            session,
            programme,
            wallet,
            frm=survivor_id,
            to=duplicate_id,
            lots_of=lots_of,
            key=f"unmerge:{merge_id}:{wallet.code}",
            merge_id=merge_id,
            now=now,
        )
        returned = sum(lot["amount"] for lot in lots)
        short = item["amount"] - returned
        report.append(
            {
                "wallet": wallet.code,
                "moved": str(from_minor(wallet, item["amount"])),
                "returned": str(from_minor(wallet, returned)),
                "shortfall": str(from_minor(wallet, short)),
                "shortfall_minor": short,
                "transaction_id": str(back_id) if back_id else None,
                "lots": lots,
            }
        )
    return report
