"""Rewards errors; each carries its HTTP status (see ``fidelia.errors``)."""

from __future__ import annotations

from typing import Any

from fidelia.errors import Conflict


class OutOfStock(Conflict):
    """The reward has no stock left for this redemption."""

    code = "out_of_stock"


class NotRedeemable(Conflict):
    """The member may not redeem this reward now (window, tier, condition, limits)."""

    code = "not_redeemable"

    def __init__(self, detail: str, *, reasons: list[str]) -> None:
        super().__init__(f"{detail}: {', '.join(reasons)}")
        self.reasons = reasons


class IdempotencyMismatch(Conflict):
    """The idempotency key was used for another request."""

    code = "idempotency_key_reused"


class InvalidState(Conflict):
    """The redemption or voucher is not in a state that allows this."""

    code = "invalid_state"


class PoolExhausted(Conflict):
    """An imported pool has no code left to hand out (and no pattern to make one)."""

    code = "pool_exhausted"


class VoucherRejected(Conflict):
    """A code presented at the till is not valid for this member and basket."""

    code = "voucher_rejected"

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason

    def as_dict(self) -> dict[str, Any]:
        """The error code names the reason: ``voucher_used``, ``voucher_expired``..."""
        return {**super().as_dict(), "error": f"voucher_{self.reason}"}
