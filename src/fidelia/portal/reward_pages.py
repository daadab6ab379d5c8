"""Rewards: the catalogue at the member's price, a confirmation step, redeeming and donating
(idempotent: the confirmation form's nonce is the redemption's key, so a double click or a
resend charges once), the vouchers wallet and the member's card as QR code and barcode."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fidelia.auth.dependencies import get_database
from fidelia.errors import Conflict, FideliaError, NotFound
from fidelia.kit.clock import utcnow
from fidelia.ledger.errors import InsufficientPoints
from fidelia.members import service as members
from fidelia.members.schemas import IdentityAdd
from fidelia.models import MemberIdentity, Reward
from fidelia.portal import codes, views
from fidelia.portal.access import Me, MeDep, WriteMe
from fidelia.portal.templating import render
from fidelia.rewards import redeeming
from fidelia.rewards import service as rewards
from fidelia.rewards import vouchers as voucher_service
from fidelia.rewards.errors import NotRedeemable, OutOfStock

router = APIRouter()
Nonce = Annotated[str, Form(min_length=8, max_length=64)]
WHY = {
    "not_available": "This reward is not available now.",
    "tier": "This reward is for other levels.",
    "condition": "This reward is reserved for some members.",
    "out_of_stock": "This reward is out of stock.",
    "limit_reached": "You already have as many as allowed.",
    "first_n_reached": "All of them have been taken.",
    "points": "You do not have enough points.",
}


def _offer(request: Request, me: Me, code: str) -> rewards.Offer:
    with get_database(request).transaction(readonly=True) as session:
        for offer in rewards.catalogue_for(session, programme=me.programme, member=me.member):
            if offer.reward.code == code:
                return offer
    raise NotFound("there is no such reward")


@router.get("/{slug}/rewards", response_class=HTMLResponse)
def catalogue(request: Request, me: MeDep) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        offers = rewards.catalogue_for(session, programme=me.programme, member=me.member)
        wallets = views.balances_of(
            session,
            programme=me.programme,
            member=me.member,
            section=me.site.section,
            now=utcnow(),
        )
    points = next((b.available for b in wallets if b.wallet.code == "points"), 0)
    offers.sort(key=lambda o: (bool(o.reasons) or not o.affordable, not o.reward.featured, o.price))
    return render(
        request,
        "rewards.html",
        site=me.site,
        me=me,
        page="rewards",
        offers=offers,
        points=points,
        why=WHY,
    )


def _confirm(
    request: Request,
    me: Me,
    offer: rewards.Offer,
    *,
    status: int = 200,
    error: str | None = None,
    nonce: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "confirm.html",
        site=me.site,
        me=me,
        page="rewards",
        offer=offer,
        why=WHY,
        error=error,
        nonce=nonce or secrets.token_urlsafe(16),
        status=status,
    )


@router.get("/{slug}/rewards/{code}", response_class=HTMLResponse)
def confirm(request: Request, me: MeDep, code: str) -> HTMLResponse:
    """The confirmation step: what it costs, what is left after, or why it cannot be had."""
    return _confirm(request, me, _offer(request, me, code[:64]))


@router.post("/{slug}/rewards/{code}/redeem")
def redeem(request: Request, me: WriteMe, code: str, nonce: Nonce) -> Response:
    """Redeem (or donate): one redemption per confirmation form, whatever the clicks."""
    fmt = me.fmt
    try:
        with get_database(request).transaction() as session:
            redemption = redeeming.redeem(
                session,
                programme=me.programme,
                member_id=me.member.id,
                reward=code[:64],
                idempotency_key=f"portal:{me.member.id}:{nonce}",
            )
            kind = redemption.kind
    except (InsufficientPoints, OutOfStock, NotRedeemable) as exc:
        offer = _offer(request, me, code[:64])
        if isinstance(exc, InsufficientPoints):
            message = WHY["points"]
        elif isinstance(exc, OutOfStock):
            message = WHY["out_of_stock"]
        else:
            reasons = getattr(exc, "reasons", None) or offer.reasons or ["not_available"]
            message = WHY.get(reasons[0], WHY["not_available"])
        return _confirm(request, me, offer, status=409, error=fmt.gettext(message))
    target = "vouchers" if kind == "voucher" else "history"
    return RedirectResponse(f"{me.site.base}/{target}?done={kind}", status_code=303)


@router.get("/{slug}/vouchers", response_class=HTMLResponse)
def wallet(
    request: Request, me: MeDep, done: Annotated[str | None, Query(max_length=32)] = None
) -> HTMLResponse:
    now = utcnow()
    with get_database(request).transaction(readonly=True) as session:
        found = voucher_service.vouchers_of_member(
            session, programme=me.programme, member_id=me.member.id
        )
        shown = [voucher_service.out(session, v, now) for v in found]
    return render(
        request,
        "vouchers.html",
        site=me.site,
        me=me,
        page="wallet",
        vouchers=shown,
        qr=codes.qr_uri,
        bar=codes.barcode_uri,
        done=done,
    )


def _cards(request: Request, me: Me) -> list[str]:
    from sqlalchemy import select

    with get_database(request).transaction(readonly=True) as session:
        return list(
            session.scalars(
                select(MemberIdentity.value)
                .where(MemberIdentity.member_id == me.member.id, MemberIdentity.kind == "card")
                .order_by(MemberIdentity.value)
            )
        )


@router.get("/{slug}/card", response_class=HTMLResponse)
def card(
    request: Request, me: MeDep, done: Annotated[str | None, Query(max_length=32)] = None
) -> HTMLResponse:
    return render(
        request,
        "card.html",
        site=me.site,
        me=me,
        page="card",
        cards=_cards(request, me),
        qr=codes.qr_uri,
        bar=codes.barcode_uri,
        error=None,
        value="",
        done=done,
    )


@router.post("/{slug}/card", response_class=HTMLResponse)
def add_card(
    request: Request, me: WriteMe, card: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    """Add a loyalty card found at home to the account (409 if it is another member's)."""
    try:
        with get_database(request).transaction() as session:
            member = members.get(session, programme=me.programme, member_id=me.member.id)
            key = members.key_of(me.programme, IdentityAdd(kind="card", value=card or " "))
            members.add_identity(session, programme=me.programme, member=member, key=key)
    except (FideliaError, ValueError) as exc:
        if isinstance(exc, Conflict):
            message = "This card is already linked to an account."
        elif isinstance(exc, FideliaError) and exc.fields:
            message = "This card number is not valid."
        else:
            message = "This card number is not valid."
        return render(
            request,
            "card.html",
            site=me.site,
            me=me,
            page="card",
            status=422,
            cards=_cards(request, me),
            qr=codes.qr_uri,
            bar=codes.barcode_uri,
            error=me.fmt.gettext(message),
            value=card,
            done=None,
        )
    return RedirectResponse(f"{me.site.base}/card?done=added", status_code=303)


def reward_label(reward: Reward, language: str) -> str:
    labels = reward.labels or {}
    return str(labels.get(language) or reward.name)
