"""``/members/{id}/export`` (access) and ``/members/{id}/erase`` (erasure)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.privacy.access import export_member
from fidelia.privacy.erasure import erase_member
from fidelia.privacy.schemas import ErasureOut

router = APIRouter(prefix="/members", tags=["privacy"], responses=ERROR_RESPONSES)


EXPORT = {
    "format": "fidelia.member-export/1",
    "exported_at": "2026-11-30T15:00:00+00:00",
    "programme": {"id": "019ceb9e-5e00-7000-8000-000000000001", "slug": "shop", "name": "Shop"},
    "member": {"id": "019ceb9e-6018-78a4-ad11-f033b48438b5", "status": "active"},
    "data": {"member_identities": [{"kind": "email", "value": "ann@example.com"}]},
}


@router.get(
    "/{member_id}/export",
    summary="Everything held about a member (GDPR access)",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object", "examples": [EXPORT]}}}}
    },
)
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


@router.post(
    "/{member_id}/erase", response_model=ErasureOut, summary="Erase a member's personal data"
)
def erase(member_id: uuid.UUID, principal: Admin, session: DbSession) -> ErasureOut:
    """Erase the member's personal data everywhere it is stored (GDPR right to erasure): the
    profile emptied, identities deleted (the old card, email or phone find nobody; the person
    may enrol again as a new member), consent sources and the personal properties of their
    events rewritten, messages emptied, portal sessions ended; the member is closed. Points,
    ledger, counts and KPIs are unchanged. The erasure is recorded (when, by which key), never
    what was erased. Erasing again is harmless (`already_erased`). See docs/privacy.md.

    404: no such member (nothing changed). 409: a merged duplicate (erase its survivor).

    Scope: `admin`.
    """
    done = erase_member(
        session,
        programme=principal.programme,
        member_id=member_id,
        actor=f"api_key:{principal.key_id}",
    )
    return ErasureOut(
        member_id=done.record.member_id,
        erased_at=done.record.erased_at,
        actor=done.record.actor,
        reason=done.record.reason,
        already_erased=done.already,
        events_rewritten=done.events_rewritten,
        tables_scrubbed=done.tables_scrubbed,
        tables_refused=done.tables_refused,
    )
