"""Giving a voucher from the event path: through the rewards domain, never failing the event.

A voucher that cannot be issued (unknown pool, imported pool exhausted) is reported in the
event's outcome as ``{"kind": "voucher_issued", "status": "failed", "reason": ...}``; the
event and its other effects stand (a savepoint undoes whatever the attempt wrote).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fidelia.errors import FideliaError
from fidelia.models import Programme
from fidelia.rewards.vouchers import issue_voucher


def give_voucher(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    ref: str,
    idempotency_key: str,
    source_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Issue one voucher of pool (or voucher reward) ``ref``; the outcome effect either way."""
    effect: dict[str, Any] = {"kind": "voucher_issued", "reward": ref}
    try:
        with session.begin_nested():
            voucher = issue_voucher(
                session,
                programme=programme,
                member_id=member_id,
                pool=ref,
                source="rule",
                idempotency_key=idempotency_key,
                now=now,
                source_id=source_id,
            )
    except FideliaError as err:
        return {**effect, "status": "failed", "reason": err.code, "detail": err.detail}
    return {**effect, "status": "issued", "voucher_id": str(voucher.id), "code": voucher.code}
