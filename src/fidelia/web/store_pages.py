"""In store: the page store staff keep open at the till (issue 12, seed 001: "vendeurs formés
et outillés"). Find the member by card, phone or email; see their balances with their money
value, tier and what is left to the next one, the perks they hold now, the vouchers ready to
use, the rewards they can afford and the next-best offer to suggest; enrol a new member in a
few fields, through the same intake as the API (so the welcome rules fire)."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.analytics import recommend_service
from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import NotFound
from fidelia.intake import service as intake
from fidelia.kit.clock import utcnow
from fidelia.ledger import repository as ledger_repo
from fidelia.ledger import wallets as wallet_service
from fidelia.members import service as members
from fidelia.models import Event, Member, Programme
from fidelia.offers.perks import perks_of
from fidelia.rewards import service as catalogue
from fidelia.rewards import vouchers as voucher_service
from fidelia.tiers import progress as tier_progress
from fidelia.web import member_view
from fidelia.web.access import BASE, Page, ReadPage, WritePage
from fidelia.web.templating import render

router = APIRouter()


def _till_card(session: Session, programme: Programme, member: Member) -> dict[str, Any]:
    """Everything the till shows of one member (read only)."""
    now = utcnow()
    wallets = []
    for wallet in wallet_service.list_wallets(session, programme=programme):
        account = ledger_repo.find_member_account(session, wallet=wallet, member_id=member.id)
        available = account.available if account is not None else 0
        value = wallet_service.from_minor(wallet, available)
        money = value * wallet.unit_value if wallet.unit_value is not None else None
        wallets.append({"wallet": wallet, "available": value, "money": money})
    try:
        tier = tier_progress.progress(session, programme=programme, member_id=member.id, now=now)
    except NotFound:  # the programme has no tiers
        tier = None
    ready = [
        v
        for v in voucher_service.vouchers_of_member(
            session, programme=programme, member_id=member.id
        )
        if v.status == "active"
        and (v.valid_from is None or v.valid_from <= now)
        and (v.valid_until is None or v.valid_until > now)
    ]
    offers = catalogue.catalogue_for(session, programme=programme, member=member, now=now)
    return {
        "member": member,
        "identities": members.details(session, member=member)["identities"],
        "wallets": wallets,
        "tier": tier,
        "perks": _perks(session, programme, member),
        "vouchers": ready,
        "affordable": [o for o in offers if o.affordable and not o.reasons][:8],
        "next_best": _next_best(session, programme, member),
    }


def _perks(session: Session, programme: Programme, member: Member) -> list[Any]:
    return list(perks_of(session, programme=programme, member_id=member.id).perks)


def _next_best(session: Session, programme: Programme, member: Member) -> list[dict[str, Any]]:
    """The member's top recommendations of the default model (categories, then products), or
    nothing when no model has been trained."""
    for item in ("category", "sku"):
        try:
            found = recommend_service.for_member(
                session, programme=programme, member_id=member.id, item=item, k=3
            )
        except (NotFound, ValueError):
            continue
        items = list(found.get("items") or [])
        if items:
            return [{**i, "kind": item} for i in items]
    return []


@router.get("/p/{slug}/store", response_class=HTMLResponse)
def till(
    request: Request,
    page: ReadPage,
    q: Annotated[str, Query(max_length=320)] = "",
    member: uuid.UUID | None = None,
    enrolled: bool = False,
) -> HTMLResponse:
    card = None
    found: list[Member] = []
    with get_database(request).transaction(readonly=True) as session:
        if member is not None:
            card = _till_card(
                session,
                page.programme,
                members.get(session, programme=page.programme, member_id=member),
            )
        elif q.strip():
            found = member_view.search(session, programme=page.programme, text=q)
            if len(found) == 1:
                card = _till_card(session, page.programme, found[0])
    return _render(request, page, q=q, found=found, card=card, enrolled=enrolled)


def _render(
    request: Request,
    page: Page,
    *,
    status: int = 200,
    q: str = "",
    found: list[Member] | None = None,
    card: dict[str, Any] | None = None,
    enrolled: bool = False,
    form: dict[str, str] | None = None,
    error: str | None = None,
    error_field: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "store.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        active="store",
        status=status,
        q=q,
        found=found or [],
        card=card,
        enrolled=enrolled,
        form=form or {},
        error=error,
        error_field=error_field,
        nonce=secrets.token_urlsafe(16),
    )


Short = Annotated[str, Form(max_length=320)]


@router.post("/p/{slug}/store/enrol", response_class=HTMLResponse)
def enrol(
    request: Request,
    page: WritePage,
    email: Short = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    card: Annotated[str, Form(max_length=64)] = "",
    first_name: Annotated[str, Form(max_length=100)] = "",
    last_name: Annotated[str, Form(max_length=100)] = "",
    store: Annotated[str, Form(max_length=64)] = "",
    consent_email: Annotated[str, Form(max_length=8)] = "",
    consent_sms: Annotated[str, Form(max_length=8)] = "",
    nonce: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Enrol through the intake: an ``enrolment`` event from the store channel, so the
    programme's welcome rules apply as for any other enrolment; the form's nonce is the
    event id, so a form sent twice enrols once."""
    form = {
        "email": email,
        "phone": phone,
        "card": card,
        "first_name": first_name,
        "last_name": last_name,
        "store": store,
    }
    ref = {
        k: v.strip() for k, v in (("email", email), ("phone", phone), ("card", card)) if v.strip()
    }
    if not ref:
        return _render(
            request,
            page,
            status=422,
            form=form,
            error="give an email, a phone number or a card number",
            error_field="email",
        )
    profile = {
        k: v.strip() for k, v in (("first_name", first_name), ("last_name", last_name)) if v.strip()
    }
    consents = [
        {"channel": channel, "granted": True, "source": "store"}
        for channel, given in (("email", consent_email), ("sms", consent_sms))
        if given
    ]
    payload: dict[str, Any] = {
        "id": f"store-enrol:{nonce or secrets.token_urlsafe(16)}",
        "type": "enrolment",
        "occurred_at": utcnow().isoformat(),
        "channel": "store",
        "member": ref,
        "properties": {"profile": profile, "consents": consents},
    }
    if store.strip():
        payload["store"] = store.strip()
    with get_database(request).transaction() as session:
        sent = session.scalar(  # the form sent again: its first enrolment stands
            select(Event.member_id).where(
                Event.programme_id == page.programme.id, Event.idempotency_key == payload["id"]
            )
        )
        if sent is not None:
            target = f"{BASE}/p/{page.programme.slug}/store?member={sent}&enrolled=true"
            return RedirectResponse(target, status_code=303)
        (outcome,) = intake.ingest(
            session,
            programme=page.programme,
            events=intake.parse([payload]),
            now=utcnow(),
            on_enrolled="refuse",
            actor=page.actor,
        )
        if outcome.status == "accepted" and outcome.member_id is not None:
            audit.record(
                session,
                programme_id=page.programme.id,
                actor=page.actor,
                user_id=page.viewer.user.id,
                action="member.enrol",
                target_type="member",
                target_id=str(outcome.member_id),
                after={"channel": "store", "store": store.strip() or None},
            )
    if outcome.status in ("accepted", "duplicate") and outcome.member_id is not None:
        target = f"{BASE}/p/{page.programme.slug}/store?member={outcome.member_id}&enrolled=true"
        return RedirectResponse(target, status_code=303)
    field = None
    if outcome.fields:
        loc = [str(p) for p in outcome.fields[0]["loc"]]
        field = next((k for k in ("email", "phone", "card") if k in loc), None)
    message = str(outcome.fields[0]["msg"]) if outcome.fields else (outcome.detail or "refused")
    status = 409 if outcome.error in ("already_enrolled", "conflict", "identity_taken") else 422
    return _render(
        request, page, status=status, form=form, error=message, error_field=field or "email"
    )
