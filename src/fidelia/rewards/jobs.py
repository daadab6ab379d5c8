"""Job handlers: record a voucher's expiry (and its redemption's) when it is due."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from fidelia.jobs.service import handler
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Voucher
from fidelia.rewards.redemptions import expire_with_voucher
from fidelia.rewards.vouchers import EXPIRE_JOB


@handler(EXPIRE_JOB)
def run_expire(session: Session, job: Job) -> None:
    """Mark the voucher named in the payload expired if it is still unused and past its end."""
    voucher = session.get(Voucher, uuid.UUID(job.payload["voucher_id"]), with_for_update=True)
    if voucher is not None:
        expire_with_voucher(session, voucher=voucher, now=max(utcnow(), job.due_at))
