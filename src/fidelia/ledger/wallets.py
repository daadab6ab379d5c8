"""Wallets: what a programme gives (points, cashback, status points) and in which unit.

Design note
-----------
A wallet's amounts are stored as integers of its minor unit: ``scale`` decimal places (0 for
points, the currency exponent for money, e.g. 2 for EUR). Conversion happens at the edge
(:func:`to_minor`, :func:`from_minor`) and refuses amounts finer than the unit rather than
rounding them. ``unit`` and ``scale`` are fixed once declared (stored amounts depend on them);
policies may change and apply to value earned afterwards.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.kit.bounds import MAX_POSTING
from fidelia.ledger.repository import create_system_accounts
from fidelia.ledger.schemas import Amount, ExpiryPolicy, PendingPolicy, WalletIn
from fidelia.models import Account, Programme, Wallet

_Policy = TypeVar("_Policy", bound=BaseModel)

# ISO 4217 minor units that are not 2.
CURRENCY_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0,
    "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0,
    "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


def currency_scale(currency: str) -> int:
    """The number of decimal places of ``currency`` (ISO 4217 minor unit)."""
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


def default_wallets(programme: Programme) -> list[WalletIn]:
    """Points (1 point = 0.01, 12 months), cashback (currency, 12 months), status points."""
    return [
        WalletIn(
            code="points",
            name="Points",
            unit_value=Decimal("0.01"),
            debt_policy="allow_debt",
            expiry=ExpiryPolicy(kind="rolling", months=12),
        ),
        WalletIn(
            code="cashback",
            name="Cashback",
            unit="money",
            unit_value=Decimal(1),
            debt_policy="clamp",
            expiry=ExpiryPolicy(kind="rolling", months=12),
        ),
        WalletIn(code="status", name="Status points", spendable=False, debt_policy="clamp"),
    ]


def ensure_default_wallets(session: Session, *, programme: Programme) -> list[Wallet]:
    """Declare the default wallets that the programme does not have yet; returns all three."""
    wallets = []
    for data in default_wallets(programme):
        existing = find_wallet(session, programme=programme, code=data.code)
        wallets.append(existing or declare_wallet(session, programme=programme, data=data))
    return wallets


def declare_wallet(session: Session, *, programme: Programme, data: WalletIn) -> Wallet:
    """Create the wallet ``data.code`` or update its name and policies (unit and scale stay)."""
    scale = data.scale
    if scale is None:
        scale = currency_scale(programme.currency) if data.unit == "money" else 0
    wallet = find_wallet(session, programme=programme, code=data.code, lock=True)
    created = wallet is None
    if wallet is None:
        wallet = Wallet(programme_id=programme.id, code=data.code, unit=data.unit, scale=scale)
        session.add(wallet)
    elif (wallet.unit, wallet.scale) != (data.unit, scale):
        raise Conflict(
            f"wallet {data.code!r} holds {wallet.unit} with scale {wallet.scale}; "
            "unit and scale cannot change"
        )
    else:
        _change_debt_policy(session, wallet, data.debt_policy)
    wallet.name, wallet.unit_value, wallet.spendable = data.name, data.unit_value, data.spendable
    wallet.debt_policy = data.debt_policy
    wallet.expiry_policy = data.expiry.model_dump(mode="json")
    wallet.pending_policy = data.pending.model_dump(mode="json")
    session.flush()
    if created:
        create_system_accounts(session, wallet=wallet)
    return wallet


def _change_debt_policy(session: Session, wallet: Wallet, policy: str) -> None:
    if policy == wallet.debt_policy:
        return
    allows = policy == "allow_debt"
    if not allows:
        in_debt = session.scalar(
            select(Account.id).where(Account.wallet_id == wallet.id, Account.available < 0)
        )
        if in_debt is not None:
            raise Conflict(f"members of wallet {wallet.code!r} are in debt; settle them first")
    session.execute(
        update(Account)
        .where(Account.wallet_id == wallet.id, Account.member_id.is_not(None))
        .values(allows_debt=allows)
    )


def find_wallet(
    session: Session, *, programme: Programme, code: str, lock: bool = False
) -> Wallet | None:
    """The programme's wallet ``code``, or None. Found wallets are remembered for the session
    (every posting looks its wallet up; a wallet row changes only through this module); the
    first lookup reads all the programme's wallets (a purchase earns in several)."""
    cache: dict[tuple[object, str], Wallet] = session.info.setdefault("fidelia.wallets", {})
    if not lock and (programme.id, code) in cache:
        return cache[(programme.id, code)]
    query = select(Wallet).where(Wallet.programme_id == programme.id)
    if lock:
        wallet = session.scalar(query.where(Wallet.code == code).with_for_update())
    else:
        found = {w.code: w for w in session.scalars(query)}
        cache.update({(programme.id, c): w for c, w in found.items()})
        wallet = found.get(code)
    if wallet is not None:
        cache[(programme.id, code)] = wallet
    return wallet


def get_wallet(session: Session, *, programme: Programme, code: str) -> Wallet:
    """The programme's wallet ``code``; 404 if it is not declared."""
    wallet = find_wallet(session, programme=programme, code=code)
    if wallet is None:
        raise NotFound(f"wallet {code!r} is not declared in this programme")
    return wallet


def list_wallets(session: Session, *, programme: Programme) -> list[Wallet]:
    """The programme's wallets, by code."""
    query = select(Wallet).where(Wallet.programme_id == programme.id).order_by(Wallet.code)
    return list(session.scalars(query))


def to_minor(wallet: Wallet, amount: Amount, *, loc: tuple[str | int, ...] = ("amount",)) -> int:
    """``amount`` in the wallet's unit as an integer of minor units; 422 if finer than that."""
    value = Decimal(amount) if isinstance(amount, int) else amount
    if not value.is_finite():
        raise ValidationFailed.on(loc, "not a number")
    minor = value.scaleb(wallet.scale)
    if abs(minor) > MAX_POSTING:
        most = from_minor(wallet, MAX_POSTING)
        raise ValidationFailed.on(loc, f"at most {most} in one posting (wallet {wallet.code!r})")
    if minor != minor.to_integral_value():
        unit = "whole points" if wallet.unit == "points" else f"{wallet.scale} decimal places"
        raise ValidationFailed.on(loc, f"wallet {wallet.code!r} takes {unit} at most")
    return int(minor)


def from_minor(wallet: Wallet, minor: int) -> Amount:
    """Minor units back to the wallet's unit: int for scale 0, an exact Decimal otherwise."""
    if wallet.scale == 0:
        return int(minor)
    return Decimal(int(minor)).scaleb(-wallet.scale)


def expiry_policy(wallet: Wallet) -> ExpiryPolicy:
    """The wallet's expiry policy document (shared: read it, do not change it)."""
    return _parsed(ExpiryPolicy, wallet, wallet.expiry_policy)


def pending_policy(wallet: Wallet) -> PendingPolicy:
    """The wallet's pending policy document (shared: read it, do not change it)."""
    return _parsed(PendingPolicy, wallet, wallet.pending_policy)


# (model, wallet id as an int) -> (a copy of the document, the model parsed from it): every
# award reads both policies of its wallet, and parsing them was 3 % of a purchase's CPU
# (issue 18). A document that differs from the copy (the wallet was changed) is parsed again.
_PARSED: dict[tuple[type[BaseModel], int], tuple[Any, BaseModel]] = {}


def _parsed(model: type[_Policy], wallet: Wallet, document: Any) -> _Policy:
    key = (model, wallet.id.int)  # an int hashes in C, a UUID in Python
    found = _PARSED.get(key)
    if found is not None and found[0] == document:
        return found[1]  # type: ignore[return-value]
    parsed = model.model_validate(document)
    _PARSED[key] = (copy.deepcopy(document), parsed)
    return parsed
