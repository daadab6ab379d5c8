"""The notices of ledger postings written outside the intake (API operations, spends, expiry).

Postings of intake events (``source_type`` ``event``) are noticed by the intake from the
event's outcome, with the rest of the batch's notices, in one statement; here each posting
adds one multi-row ``INSERT`` (a set-based spend of many members too).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from fidelia.ledger.wallets import from_minor
from fidelia.models import Programme, Wallet
from fidelia.notices import Notice, record_many

TYPES = {
    "earn": "points.earned",
    "spend": "points.spent",
    "expire": "points.expired",
    "adjust": "points.adjusted",
    "transfer": "points.transferred",
    "reverse": "points.reversed",
    "return": "points.returned",
}


def member_amounts(
    legs: Iterable[tuple[uuid.UUID, int]], accounts: Mapping[uuid.UUID, Any]
) -> dict[uuid.UUID, int]:
    """Net minor units per member of (account id, amount) legs; ``accounts`` by member id."""
    owner = {account.id: member_id for member_id, account in accounts.items()}
    found: dict[uuid.UUID, int] = {}
    for account_id, amount in legs:
        member_id = owner.get(account_id)
        if member_id is not None:
            found[member_id] = found.get(member_id, 0) + amount
    return found


class Moved(NamedTuple):
    """What one posting did to one member's balance (minor units, signed)."""

    kind: str
    wallet: Wallet
    member_id: uuid.UUID
    minor: int
    occurred_at: datetime
    transaction_id: uuid.UUID
    source_type: str
    reason: str | None = None


def record(session: Session, *, programme: Programme, moved: Iterable[Moved]) -> None:
    """One notice per member balance moved (signed for adjustments, transfers and
    reversals, positive otherwise), all in one statement; intake events' postings skipped."""
    record_many(session, programme.id, notices(moved))


def notices(moved: Iterable[Moved]) -> list[Notice]:
    """The notices :func:`record` writes, for a caller that writes them with its own."""
    rows = []
    for m in moved:
        type_ = TYPES.get(m.kind)
        if type_ is None or m.source_type == "event" or not m.minor:
            continue
        signed = m.kind in ("adjust", "transfer", "reverse")
        data: dict[str, Any] = {
            "wallet": m.wallet.code,
            "points": from_minor(m.wallet, m.minor if signed else abs(m.minor)),
            "transaction_id": m.transaction_id,
            "source": m.source_type,
        }
        if m.reason:
            data["reason"] = m.reason
        rows.append(Notice(type_, m.member_id, m.occurred_at, data))
    return rows
