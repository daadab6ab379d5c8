"""``/members/{id}/export`` (access) and ``/members/{id}/erase`` (erasure)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from fidelia.auth.dependencies import DbSession, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.privacy.access import export_member

router = APIRouter(prefix="/members", tags=["privacy"], responses=ERROR_RESPONSES)


@router.get("/{member_id}/export", summary="Everything held about a member (GDPR access)")
def export(member_id: uuid.UUID, principal: Reader, session: DbSession) -> dict[str, Any]:
    """One JSON document with everything Fidelia holds about the member: `member` (the profile)
    and `data`, one list of rows per table that holds the member's data (identities, consents
    and their history, status history, events, ledger accounts (balances), transactions, entries
    and lots, redemptions, vouchers, badges, challenges, tiers, traits, segments, messages,
    merges...). Columns holding secrets are left out. See docs/privacy.md.

    404: no such member in the programme.

    Scope: `read`.
    """
    return export_member(session, programme=principal.programme, member_id=member_id)
