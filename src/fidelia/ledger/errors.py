"""Ledger errors; each carries its HTTP status (see ``fidelia.errors``)."""

from __future__ import annotations

import uuid

from fidelia.errors import Conflict


class InsufficientPoints(Conflict):
    """The available balance (or the spendable lots) does not cover the amount."""

    code = "insufficient_balance"


class AlreadyPosted(Conflict):
    """A transaction with this idempotency key exists already in the programme."""

    code = "already_posted"

    def __init__(self, key: str, transaction_id: uuid.UUID | None = None) -> None:
        where = f" (transaction {transaction_id})" if transaction_id else ""
        super().__init__(f"a ledger transaction with idempotency key {key!r} exists{where}")
        self.key = key
        self.transaction_id = transaction_id


class NotReversible(Conflict):
    """The transaction cannot be reversed (already reversed, or of a kind that cannot be)."""

    code = "not_reversible"


class ExceedsAward(Conflict):
    """A return would take back more than the original transaction awarded."""

    code = "exceeds_award"


class NotSpendable(Conflict):
    """The wallet holds value that cannot be spent or transferred (e.g. status points)."""

    code = "not_spendable"


class UnbalancedPosting(RuntimeError):
    """A programming error: a posting that does not sum to zero or breaks a lot's bounds."""


class BalanceLimit(Conflict):
    """A posting would take a balance or lifetime counter beyond the ledger's bounds."""

    code = "balance_limit"
