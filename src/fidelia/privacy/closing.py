"""A member asks to close their account (the portal's "close my account")."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from fidelia.members import service as members
from fidelia.models import Member, Programme


def close_account(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    actor: str,
    reason: str = "member request",
) -> Member:
    """Close the member's account at their request: intake refuses their events from then on,
    the change is in the status history with ``reason`` and ``actor``. Closing a closed account
    changes nothing. Their data is kept until an erasure request or the programme's retention
    job (``privacy.retention_months``) erases it."""
    member = members.get_for_update(session, programme=programme, member_id=member_id)
    return members.set_status(session, member=member, status="closed", actor=actor, reason=reason)
