"""Ledger API: member balances, history, as-of balance, expiring value; adjustments,
transfers, reversals; wallet declarations. Amounts are in the wallet's unit."""

from __future__ import annotations

import uuid
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES, ValidationFailed
from fidelia.kit.bounds import Instant
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import Page
from fidelia.ledger import balances, expiry, operations, returns
from fidelia.ledger import repository as repo
from fidelia.ledger import wallets as wallet_service
from fidelia.ledger.schemas import (
    AdjustmentIn,
    Amount,
    AsOfBalanceOut,
    BalanceOut,
    EntryOut,
    ExpiringOut,
    HistoryItem,
    ReverseIn,
    TransactionOut,
    TransferIn,
    WalletIn,
    WalletOut,
)
from fidelia.members import service as members
from fidelia.models import Account, Programme, Wallet

router = APIRouter(tags=["ledger"], responses=ERROR_RESPONSES)
Days = Annotated[int, Query(ge=1, le=366)]


def _account(
    session: Session, programme: Programme, member_id: uuid.UUID, code: str
) -> tuple[Wallet, Account | None]:
    members.get(session, programme=programme, member_id=member_id)
    wallet = wallet_service.get_wallet(session, programme=programme, code=code)
    return wallet, repo.find_member_account(session, wallet=wallet, member_id=member_id)


def _balance(wallet: Wallet, account: Account | None) -> BalanceOut:
    def unit(column: str) -> Amount:
        return wallet_service.from_minor(wallet, getattr(account, column) if account else 0)

    return BalanceOut(
        wallet=wallet.code,
        unit=wallet.unit,
        available=unit("available"),
        pending=unit("pending"),
        lifetime_earned=unit("lifetime_earned"),
        lifetime_spent=unit("lifetime_spent"),
        lifetime_expired=unit("lifetime_expired"),
        value=unit("available") * wallet.unit_value,
    )


@router.get("/members/{member_id}/wallets", response_model=list[BalanceOut])
def member_balances(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[BalanceOut]:
    """Balances of the member in every wallet of the programme."""
    programme = principal.programme
    members.get(session, programme=programme, member_id=member_id)
    return [
        _balance(w, repo.find_member_account(session, wallet=w, member_id=member_id))
        for w in wallet_service.list_wallets(session, programme=programme)
    ]


@router.get("/members/{member_id}/wallets/{code}/history", response_model=Page[HistoryItem])
def member_history(
    member_id: uuid.UUID,
    code: str,
    principal: Reader,
    session: DbSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[HistoryItem]:
    """The member's transactions in one wallet, newest first."""
    wallet, account = _account(session, principal.programme, member_id, code)
    if account is None:
        return Page(items=[])
    rows, next_cursor = balances.history(session, account=account, cursor=cursor, limit=limit)
    items = [
        HistoryItem(
            transaction_id=r.transaction.id,
            kind=r.transaction.kind,
            amount=wallet_service.from_minor(wallet, r.available),
            pending=wallet_service.from_minor(wallet, r.pending),
            occurred_at=r.transaction.occurred_at,
            posted_at=r.transaction.posted_at,
            source_type=r.transaction.source_type,
            source_id=r.transaction.source_id,
            rule_id=r.transaction.rule_id,
            rule_version=r.transaction.rule_version,
            reason=r.transaction.reason,
            actor=r.transaction.actor,
            reverses_id=r.transaction.reverses_id,
        )
        for r in rows
    ]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/members/{member_id}/wallets/{code}/balance", response_model=AsOfBalanceOut)
def member_balance_as_of(
    member_id: uuid.UUID,
    code: str,
    principal: Reader,
    session: DbSession,
    as_of: Instant | None = None,
) -> AsOfBalanceOut:
    """The balance as of ``as_of`` (default now), replayed from the entries."""
    wallet, account = _account(session, principal.programme, member_id, code)
    when = as_of or utcnow()
    available, pending = (
        balances.balance_as_of(session, account=account, as_of=when) if account else (0, 0)
    )
    return AsOfBalanceOut(
        wallet=code,
        as_of=when,
        available=wallet_service.from_minor(wallet, available),
        pending=wallet_service.from_minor(wallet, pending),
    )


@router.get("/members/{member_id}/wallets/{code}/expiring", response_model=list[ExpiringOut])
def member_expiring(
    member_id: uuid.UUID, code: str, principal: Reader, session: DbSession, days: Days = 90
) -> list[ExpiringOut]:
    """What expires on each day of the next ``days`` days (programme time zone)."""
    programme = principal.programme
    wallet, account = _account(session, programme, member_id, code)
    if account is None:
        return []
    rows = expiry.expiring_for_account(
        session, account=account, tz=_tz(programme), now=utcnow(), days=days
    )
    return [ExpiringOut(date=d, amount=wallet_service.from_minor(wallet, a)) for d, a in rows]


def _tz(programme: Programme) -> ZoneInfo:
    return ZoneInfo(programme.timezone)


@router.get("/ledger/expiring", response_model=list[ExpiringOut])
def programme_expiring(
    principal: Reader, session: DbSession, wallet: str = "points", days: Days = 90
) -> list[ExpiringOut]:
    """Programme-wide: what expires on each day of the next ``days`` days."""
    programme = principal.programme
    found = wallet_service.get_wallet(session, programme=programme, code=wallet)
    rows = expiry.expiring_for_programme(
        session, programme=programme, wallet_id=found.id, now=utcnow(), days=days
    )
    return [ExpiringOut(date=d, amount=wallet_service.from_minor(found, a)) for d, a in rows]


def _transaction_out(session: Session, programme: Programme, txn_id: uuid.UUID) -> TransactionOut:
    txn, wallet, rows = balances.transaction_with_entries(
        session, programme_id=programme.id, transaction_id=txn_id
    )
    entries = [
        EntryOut(
            account_id=a.id,
            account=a.kind,
            member_id=a.member_id,
            lot_id=e.lot_id,
            pending=e.pending,
            amount=wallet_service.from_minor(wallet, e.amount),
        )
        for e, a in rows
    ]
    data = {c.key: getattr(txn, c.key) for c in txn.__table__.columns}
    return TransactionOut.model_validate({**data, "wallet": wallet.code, "entries": entries})


@router.get("/ledger/transactions/{transaction_id}", response_model=TransactionOut)
def read_transaction(
    transaction_id: uuid.UUID, principal: Reader, session: DbSession
) -> TransactionOut:
    """One ledger transaction with its entries."""
    return _transaction_out(session, principal.programme, transaction_id)


@router.post(
    "/ledger/adjustments", response_model=TransactionOut, status_code=status.HTTP_201_CREATED
)
def create_adjustment(body: AdjustmentIn, principal: Admin, session: DbSession) -> TransactionOut:
    """An operator's credit (positive) or debit (negative), with reason and actor."""
    expires = body.expires_at or operations.UNSET
    txn = operations.adjust(
        session,
        programme=principal.programme,
        member_id=body.member_id,
        wallet=body.wallet,
        amount=body.amount,
        reason=body.reason,
        actor=body.actor,
        idempotency_key=body.idempotency_key,
        expires_at=expires,
    )
    return _transaction_out(session, principal.programme, txn.id)


@router.post(
    "/ledger/transfers", response_model=TransactionOut, status_code=status.HTTP_201_CREATED
)
def create_transfer(body: TransferIn, principal: Integrator, session: DbSession) -> TransactionOut:
    """Move value between two members of the programme."""
    txn = operations.transfer(
        session,
        programme=principal.programme,
        from_member_id=body.from_member_id,
        to_member_id=body.to_member_id,
        wallet=body.wallet,
        amount=body.amount,
        idempotency_key=body.idempotency_key,
        reason=body.reason,
    )
    return _transaction_out(session, principal.programme, txn.id)


@router.post(
    "/ledger/transactions/{transaction_id}/reverse",
    response_model=TransactionOut,
    status_code=status.HTTP_201_CREATED,
)
def reverse_transaction(
    transaction_id: uuid.UUID, body: ReverseIn, principal: Admin, session: DbSession
) -> TransactionOut:
    """Reverse a transaction (linked to it); a transaction is reversed at most once."""
    txn = returns.reverse(
        session,
        programme=principal.programme,
        transaction_id=transaction_id,
        idempotency_key=body.idempotency_key,
        reason=body.reason,
        actor=body.actor,
    )
    return _transaction_out(session, principal.programme, txn.id)


@router.get("/ledger/wallets", response_model=list[WalletOut])
def list_wallets(principal: Reader, session: DbSession) -> list[WalletOut]:
    """The programme's wallets and their policies."""
    found = wallet_service.list_wallets(session, programme=principal.programme)
    return [WalletOut.model_validate(w) for w in found]


@router.put("/ledger/wallets/{code}", response_model=WalletOut)
def declare_wallet(code: str, body: WalletIn, principal: Admin, session: DbSession) -> WalletOut:
    """Declare a wallet or change its name and policies (unit and scale are fixed)."""
    if body.code != code:
        raise ValidationFailed.on("code", f"must be {code!r}, as in the path")
    wallet = wallet_service.declare_wallet(session, programme=principal.programme, data=body)
    return WalletOut.model_validate(wallet)
