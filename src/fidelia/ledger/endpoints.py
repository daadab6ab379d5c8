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


@router.get(
    "/members/{member_id}/wallets",
    response_model=list[BalanceOut],
    summary="The member's balance in every wallet",
)
def member_balances(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[BalanceOut]:
    """The member's balance in every wallet of the programme: available, pending (held until a
    return window closes or a release), lifetime earned, spent and expired, and what the available
    balance is worth in the programme currency. Points are integers, money wallets decimal strings.
    A wallet the member never used shows zeros.

    404: no such member.

    Scope: `read`.
    """
    programme = principal.programme
    members.get(session, programme=programme, member_id=member_id)
    return [
        _balance(w, repo.find_member_account(session, wallet=w, member_id=member_id))
        for w in wallet_service.list_wallets(session, programme=programme)
    ]


@router.get(
    "/members/{member_id}/wallets/{code}/history",
    response_model=Page[HistoryItem],
    summary="The member's transactions in one wallet, newest first",
)
def member_history(
    member_id: uuid.UUID,
    code: str,
    principal: Reader,
    session: DbSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[HistoryItem]:
    """The member's transactions in one wallet, newest first: what changed their available and
    pending balance, and why (the event and rule that earned it, the redemption that spent it, the
    operator's reason). Paged: pass the `next_cursor` of a page as `cursor`.

    404: no such member or wallet. 422: a cursor this API did not give.

    Scope: `read`.
    """
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


@router.get(
    "/members/{member_id}/wallets/{code}/balance",
    response_model=AsOfBalanceOut,
    summary="The member's balance in one wallet at a date",
)
def member_balance_as_of(
    member_id: uuid.UUID,
    code: str,
    principal: Reader,
    session: DbSession,
    as_of: Instant | None = None,
) -> AsOfBalanceOut:
    """The member's available and pending balance in one wallet as of `as_of` (now by default),
    replayed from the ledger's entries: what a statement at that date would show.

    404: no such member or wallet. 422: `as_of` without an offset or out of range.

    Scope: `read`.
    """
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


@router.get(
    "/members/{member_id}/wallets/{code}/expiring",
    response_model=list[ExpiringOut],
    summary="What expires from the member's balance, day by day",
)
def member_expiring(
    member_id: uuid.UUID, code: str, principal: Reader, session: DbSession, days: Days = 90
) -> list[ExpiringOut]:
    """What expires from the member's balance in one wallet on each day of the next `days` days
    (programme time zone), soonest first; days with nothing to expire are left out.

    404: no such member or wallet. 422: `days` outside 1-366.

    Scope: `read`.
    """
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


@router.get(
    "/ledger/expiring",
    response_model=list[ExpiringOut],
    summary="What expires programme-wide, day by day",
)
def programme_expiring(
    principal: Reader, session: DbSession, wallet: str = "points", days: Days = 90
) -> list[ExpiringOut]:
    """Programme-wide, what expires in one wallet (`points` by default) on each day of the next
    `days` days (programme time zone): the liability about to lapse.

    404: no such wallet. 422: `days` outside 1-366.

    Scope: `read`.
    """
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


@router.get(
    "/ledger/transactions/{transaction_id}",
    response_model=TransactionOut,
    summary="A ledger transaction with its entries",
)
def read_transaction(
    transaction_id: uuid.UUID, principal: Reader, session: DbSession
) -> TransactionOut:
    """One ledger transaction with its entries. Every transaction balances: the member's entries
    (one per lot opened or consumed) against a system account (`issued`, `redeemed`, `expired`,
    `adjusted`...). A reversal links the transaction it reverses (`reverses_id`).

    404: no such transaction in the programme.

    Scope: `read`.
    """
    return _transaction_out(session, principal.programme, transaction_id)


@router.post(
    "/ledger/adjustments",
    response_model=TransactionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Credit or debit a member by hand",
)
def create_adjustment(body: AdjustmentIn, principal: Admin, session: DbSession) -> TransactionOut:
    """An operator's correction, with a reason and the actor who made it: a positive `amount`
    credits a new lot (expiring as the wallet says, or at `expires_at`), a negative one debits the
    member's lots, soonest-expiring first, never below zero. It is posted against the `adjusted`
    system account.

    Retries: `idempotency_key` makes the adjustment happen once; used again it is a 409
    `already_posted` and nothing is posted twice.

    404: no such member or wallet. 409: `already_posted`, `insufficient_balance` (a debit larger
    than the available balance) or `balance_limit`. 422: a zero amount, more decimals than the
    wallet's unit takes, an amount over the posting limit.

    Scope: `admin`.
    """
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
    "/ledger/transfers",
    response_model=TransactionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Transfer value between two members",
)
def create_transfer(body: TransferIn, principal: Integrator, session: DbSession) -> TransactionOut:
    """Move value from one member to another in the same wallet, in one transaction: the giver's
    lots are consumed soonest-expiring first, and the receiver gets one lot for each, with the same
    expiry (a transfer never extends validity).

    Retries: `idempotency_key` makes the transfer happen once; used again it is a 409
    `already_posted`.

    404: no such member or wallet. 409: `already_posted`, `insufficient_balance`, or `not_spendable`
    (the wallet cannot be transferred, e.g. status points). 422: the same member on both sides, an
    amount that is not positive or has too many decimals.

    Scope: `integration`.
    """
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
    summary="Reverse a transaction",
)
def reverse_transaction(
    transaction_id: uuid.UUID, body: ReverseIn, principal: Admin, session: DbSession
) -> TransactionOut:
    """Undo a transaction with a linked `reverse` transaction: the value it credited is taken back
    (what is left of it after returns; value already spent is recovered as the wallet's debt policy
    says) and the value it debited is restored. A transaction is reversed at most once; releases,
    returns and reversals themselves cannot be reversed.

    Retries: `idempotency_key` used again is a 409 `already_posted`.

    404: no such transaction. 409: `not_reversible` (already reversed, nothing left to reverse, or a
    kind that cannot be) or `already_posted`.

    Scope: `admin`.
    """
    txn = returns.reverse(
        session,
        programme=principal.programme,
        transaction_id=transaction_id,
        idempotency_key=body.idempotency_key,
        reason=body.reason,
        actor=body.actor,
    )
    return _transaction_out(session, principal.programme, txn.id)


@router.get("/ledger/wallets", response_model=list[WalletOut], summary="The programme's wallets")
def list_wallets(principal: Reader, session: DbSession) -> list[WalletOut]:
    """The programme's wallets (points, money, status points...) with their unit, scale, value per
    unit and policies: expiry, pending delay, what a return does to value already spent.

    Scope: `read`.
    """
    found = wallet_service.list_wallets(session, programme=principal.programme)
    return [WalletOut.model_validate(w) for w in found]


@router.put(
    "/ledger/wallets/{code}",
    response_model=WalletOut,
    summary="Declare a wallet or change its policies",
)
def declare_wallet(code: str, body: WalletIn, principal: Admin, session: DbSession) -> WalletOut:
    """Declare a wallet, or change the name and policies of an existing one; its unit and scale
    never change once declared. New policies apply to value earned from now on. Putting the same
    declaration again changes nothing.

    409: a different unit or scale for an existing wallet, or `clamp` while members of the wallet
    are in debt. 422: an invalid policy (e.g. a rolling expiry without `days` or `months`), or a
    `code` in the body that is not the one in the path.

    Scope: `admin`.
    """
    if body.code != code:
        raise ValidationFailed.on("code", f"must be {code!r}, as in the path")
    wallet = wallet_service.declare_wallet(session, programme=principal.programme, data=body)
    return WalletOut.model_validate(wallet)
