"""The member 360° page's actions besides adjusting points, each with a reason, through the
services the API uses, and recorded in the audit log: redeem a reward on the member's behalf,
cancel a redemption, issue a voucher, put the member in a tier until a date, suspend,
reactivate or close the member; and, for owners only, download everything held about the
member (GDPR access, audited) or erase their personal data (with a confirmation); give
points to another member on the member's behalf, under the programme's transfers policy.

A refused action re-renders the member page with the reason (the service's message) and
writes nothing; a form sent twice acts once (its nonce is the idempotency key where the
service takes one; otherwise the service refuses the repeat, e.g. cancelling a cancelled
redemption)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError, Forbidden, ValidationFailed
from fidelia.events.schemas import MemberRef
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.merges import service as merges
from fidelia.models import MemberIdentity, Voucher
from fidelia.privacy import erase_member, export_member
from fidelia.rewards import redemptions, vouchers
from fidelia.tiers import service as tiers
from fidelia.transfers import service as transfers
from fidelia.web.access import BASE, OwnerPage, Page, ReadPage, WritePage
from fidelia.web.member_pages import REASON_MAX, _amount, _member_page
from fidelia.web.member_view import identity_values

router = APIRouter()

Audited = tuple[str, str, dict[str, Any] | None, dict[str, Any]]
Text = Annotated[str, Form(max_length=REASON_MAX)]
Code = Annotated[str, Form(max_length=64)]


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationFailed.on("reason", "say why: the reason is kept with the change")
    return reason.strip()


def _act(
    request: Request,
    page: Page,
    member_id: uuid.UUID,
    *,
    done: str,
    form: dict[str, Any],
    action: Callable[[Session], Audited | None],
) -> Response:
    """Run ``action`` in one transaction with its audit entry; on refusal, the member page
    with the reason, nothing written. ``action`` returns (audit action, reason, before, after),
    or None for a form sent again (nothing done, nothing more to record)."""
    try:
        with get_database(request).transaction() as session:
            members.get(session, programme=page.programme, member_id=member_id)
            done_now = action(session)
            if done_now is None:
                return RedirectResponse(_done(page, member_id, done), status_code=303)
            name, reason, before, after = done_now
            audit.record(
                session,
                programme_id=page.programme.id,
                actor=page.actor,
                user_id=page.viewer.user.id,
                action=name,
                target_type="member",
                target_id=str(member_id),
                before=before,
                after=after,
                reason=reason,
            )
    except FideliaError as exc:
        if exc.status_code == 404 and not exc.fields:
            raise
        message = exc.fields[0].msg if exc.fields else exc.detail
        field = str(exc.fields[0].loc[-1]) if exc.fields else None
        return _member_page(
            request,
            page,
            member_id,
            status=exc.status_code,
            form={"wallet": "points", "amount": "", "reason": "", **form, "field": field},
            error=message,
        )
    return RedirectResponse(_done(page, member_id, done), status_code=303)


def _done(page: Page, member_id: uuid.UUID, done: str) -> str:
    return f"{BASE}/p/{page.programme.slug}/members/{member_id}?done={done}"


@router.post("/p/{slug}/members/{member_id}/redeem", response_class=HTMLResponse)
def redeem(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    reward: Code = "",
    reason: Text = "",
    nonce: Code = "",
) -> Response:
    """Redeem ``reward`` for the member (the points spent as through the API); the form's
    nonce is the redemption's idempotency key, so a double click redeems once."""
    key = f"backoffice:{nonce or secrets.token_urlsafe(16)}"

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        if not reward.strip():
            raise ValidationFailed.on("reward", "choose a reward")
        if redemptions.by_key(session, page.programme, key) is not None:
            return None  # sent twice: the first redemption stands
        found = redemptions.redeem(
            session,
            programme=page.programme,
            member_id=member_id,
            reward=reward.strip(),
            idempotency_key=key,
            quantity=1,
            fulfilment=None,
        )
        after = {"redemption_id": str(found.id), "reward": reward.strip(), "points": found.points}
        return "reward.redeem", why, None, after

    form = {"reward": reward, "redeem_reason": reason}
    return _act(request, page, member_id, done="redeemed", form=form, action=action)


@router.post(
    "/p/{slug}/members/{member_id}/redemptions/{redemption_id}/cancel",
    response_class=HTMLResponse,
)
def cancel(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    redemption_id: uuid.UUID,
    reason: Text = "",
) -> Response:
    """Cancel one of the member's redemptions: points refunded, stock returned, voucher
    cancelled (a used voucher, or a redemption no longer issued, is refused with why)."""

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        mine = redemptions.get(session, programme=page.programme, redemption_id=redemption_id)
        if mine.member_id != member_id:
            raise ValidationFailed.on("redemption", "not a redemption of this member")
        found = redemptions.cancel(
            session,
            programme=page.programme,
            redemption_id=redemption_id,
            reason=why,
            actor=page.actor,
        )
        before = {"redemption_id": str(found.id), "status": "issued"}
        return "reward.cancel", why, before, {"status": found.status}

    return _act(request, page, member_id, done="cancelled", form={}, action=action)


@router.post("/p/{slug}/members/{member_id}/vouchers", response_class=HTMLResponse)
def issue_voucher(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    pool: Code = "",
    reason: Text = "",
    nonce: Code = "",
) -> Response:
    """Give the member a voucher of ``pool`` (an operator's gesture); once per form."""
    key = f"backoffice:{nonce or secrets.token_urlsafe(16)}"

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        if not pool.strip():
            raise ValidationFailed.on("pool", "choose a voucher pool")
        found = vouchers.resolve_pool(session, programme=page.programme, ref=pool.strip())
        issued = select(Voucher.id).where(
            Voucher.programme_id == page.programme.id, Voucher.idempotency_key == key
        )
        if session.scalar(issued) is not None:
            return None  # sent twice: the first voucher stands
        voucher = vouchers.issue(
            session,
            programme=page.programme,
            member_id=member_id,
            pool=found,
            source="operator",
            idempotency_key=key,
            source_id=page.actor,
        )
        return "voucher.issue", why, None, {"voucher_id": str(voucher.id), "pool": found.code}

    form = {"pool": pool, "voucher_reason": reason}
    return _act(request, page, member_id, done="voucher", form=form, action=action)


def _until(text: str, zone: ZoneInfo) -> datetime | None:
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed.on("until", "a date as YYYY-MM-DD") from None
    return datetime.combine(day, time(), zone)  # the start of that day, programme time


@router.post("/p/{slug}/members/{member_id}/tier", response_class=HTMLResponse)
def assign_tier(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    tier: Code = "",
    until: Annotated[str, Form(max_length=10)] = "",
    reason: Text = "",
) -> Response:
    """Put the member in ``tier`` by hand until a date (the next review after it gives the
    level the member's figures earn)."""

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        end = _until(until, ZoneInfo(page.programme.timezone))
        now = utcnow()
        before = tiers.history(session, programme=page.programme, member_id=member_id)
        was = before[-1].to_tier if before else None
        tiers.assign(
            session,
            programme=page.programme,
            member_id=member_id,
            tier=tier.strip(),
            until=end,
            reason=why,
            now=now,
        )
        after = {"tier": tier.strip(), "until": end.isoformat() if end else None}
        return "tier.assign", why, {"tier": was}, after

    form = {"tier": tier, "until": until, "tier_reason": reason}
    return _act(request, page, member_id, done="tier", form=form, action=action)


STATUS_ACTIONS = {"suspend": "suspended", "reactivate": "active", "close": "closed"}


@router.post("/p/{slug}/members/{member_id}/status", response_class=HTMLResponse)
def change_status(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    to: Annotated[str, Form(max_length=16)] = "",
    reason: Text = "",
) -> Response:
    """Suspend, reactivate or close the member (closing is final: intake refuses the member's
    events from then on)."""

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        if to not in STATUS_ACTIONS:
            raise ValidationFailed.on("to", "one of suspend, reactivate, close")
        member = members.get_for_update(session, programme=page.programme, member_id=member_id)
        was = member.status
        members.set_status(
            session, member=member, status=STATUS_ACTIONS[to], actor=page.actor, reason=why
        )
        return "member.status", why, {"status": was}, {"status": member.status}

    form = {"to": to, "status_reason": reason}
    return _act(request, page, member_id, done="status", form=form, action=action)


def _duplicate(
    session: Session, page: Page, text: str, survivor: uuid.UUID, *, field: str = "duplicate"
) -> uuid.UUID:
    """The member named by an id or one of their identities (card, email, phone, external id,
    normalised as at intake); names are not enough to merge. ``field``: the form field named
    in errors (the transfer form reuses it for its receiver)."""
    text = text.strip()
    if not text:
        raise ValidationFailed.on(field, "give the member's id, card, email or phone")
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    found = set(
        session.scalars(
            select(MemberIdentity.member_id).where(
                MemberIdentity.programme_id == page.programme.id,
                MemberIdentity.value.in_(sorted(identity_values(page.programme, text))),
            )
        )
    ) - {survivor}
    if len(found) != 1:
        why = "no other member has this identity" if not found else "several members match"
        raise ValidationFailed.on(field, why)
    return found.pop()


@router.post("/p/{slug}/members/{member_id}/merge", response_class=HTMLResponse)
def merge(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    duplicate: Annotated[str, Form(max_length=320)] = "",
    reason: Text = "",
) -> Response:
    """Fold a duplicate record into this member (as ``POST /members/{id}/merge``): its
    identities, events, points lot by lot, vouchers and history move here; undone by unmerge."""

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        other = _duplicate(session, page, duplicate, member_id)
        record = merges.merge(
            session,
            programme=page.programme,
            survivor_id=member_id,
            duplicate_id=other,
            actor=page.actor,
            reason=why,
            source="backoffice",
        )
        after = {"duplicate_id": str(other), "merge_id": str(record.id)}
        return "member.merge", why, None, after

    form = {"duplicate": duplicate, "merge_reason": reason}
    return _act(request, page, member_id, done="merged", form=form, action=action)


@router.get("/p/{slug}/members/{member_id}/personal-data")
def personal_data(request: Request, page: ReadPage, member_id: uuid.UUID) -> Response:
    """GDPR access: everything held about the member as a JSON download (owners only; the
    download is recorded in the audit log, not its content)."""
    if not page.role.can_manage:
        raise Forbidden("only an owner of the programme may download a member's personal data")
    with get_database(request).transaction() as session:
        data = export_member(session, programme=page.programme, member_id=member_id)
        audit.record(
            session, programme_id=page.programme.id, actor=page.actor,
            user_id=page.viewer.user.id, action="member.personal_data_exported",
            target_type="member", target_id=str(member_id),
        )  # fmt: skip
    body = json.dumps(data, default=str, ensure_ascii=False, indent=1)
    name = f"{page.programme.slug}-member-{member_id}.json"
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/p/{slug}/members/{member_id}/erase", response_class=HTMLResponse)
def erase(
    request: Request,
    page: OwnerPage,
    member_id: uuid.UUID,
    confirm: Annotated[str, Form(max_length=8)] = "",
    reason: Text = "",
) -> Response:
    """Erase the member's personal data (GDPR), as ``POST /members/{id}/erase`` does: owners
    only, with the box ticked and a reason; the audit log keeps who, when and why, not what."""

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        if confirm != "yes":
            raise ValidationFailed.on("confirm", "tick the box: erasure cannot be undone")
        done = erase_member(
            session, programme=page.programme, member_id=member_id, actor=page.actor
        )
        # erase_member records "member.erase" itself; this entry keeps the operator's reason.
        erased_at = done.record.erased_at.isoformat()
        return "member.erase_requested", why, None, {"erased_at": erased_at}

    form = {"erase_reason": reason}
    return _act(request, page, member_id, done="erased", form=form, action=action)


@router.post("/p/{slug}/members/{member_id}/give", response_class=HTMLResponse)
def give_on_behalf(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    nonce: Annotated[str, Form(min_length=8, max_length=64)],
    to: Annotated[str, Form(max_length=320)] = "",
    amount: Annotated[str, Form(max_length=24)] = "",
    reason: Text = "",
) -> Response:
    """Give points from this member to another (named by id or identity) on the member's
    behalf, under the programme's ``transfers`` policy, with a reason; the form's nonce is the
    transfer's reference (a form sent twice gives once). The transfer records its own audit
    entry (channel ``admin``, the operator as actor, the reason)."""

    def action(session: Session) -> Audited | None:
        why = _reason(reason)
        receiver = _duplicate(session, page, to, member_id, field="to")
        given = transfers.give(
            session, programme=page.programme, sender_id=member_id, to=MemberRef(id=receiver),
            wallet="points", amount=_amount(amount), reference=f"admin:{nonce}",
            channel="admin", actor=page.actor, reason=why, user_id=page.viewer.user.id,
        )  # fmt: skip
        del given  # audited by the transfer itself ("points.transfer")
        return None

    form = {"give_to": to, "give_amount": amount, "give_reason": reason}
    return _act(request, page, member_id, done="given", form=form, action=action)
