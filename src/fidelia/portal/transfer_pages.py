"""Give points to another member (issue 16): only when the programme's ``transfers`` policy is
enabled for the portal. The member names the receiver by email address or card number; the
form's nonce is the transfer's reference, so a double click gives once. A refusal says why in
the member's words and gives nothing (an unknown or inactive receiver reads the same: the
portal does not tell whether someone is a member)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError, NotFound
from fidelia.events.schemas import MemberRef
from fidelia.kit.clock import utcnow
from fidelia.portal import views
from fidelia.portal.access import Me, MeDep, WriteMe
from fidelia.portal.templating import render
from fidelia.transfers import service as transfers
from fidelia.transfers.schemas import TransfersSection

router = APIRouter()
Nonce = Annotated[str, Form(min_length=8, max_length=64)]
NO_MEMBER = "We found no member with this email address or card number."
WHY = {
    "amount_below_minimum": "This amount is below the smallest gift allowed.",
    "amount_above_maximum": "This amount is above the largest gift allowed.",
    "self_transfer": "You cannot give points to yourself.",
    "not_found": NO_MEMBER,
    "receiver_inactive": NO_MEMBER,
    "sender_inactive": "Your account cannot give points at the moment.",
    "member_too_new": "You can give points after a few more days of membership.",
    "monthly_sent_limit": "This would pass this month's limit of points given.",
    "monthly_count_limit": "You have given as many times as allowed this month.",
    "monthly_received_limit": "This member cannot receive more points this month.",
    "insufficient_balance": "You do not have enough points.",
    "validation_error": "Check the amount and the email address or card number.",
}


def _policy(request: Request, me: Me) -> TransfersSection:
    with get_database(request).transaction(readonly=True) as session:
        policy = transfers.policy(session, me.programme)
    if not (policy.enabled and policy.portal and "points" in policy.wallets):
        raise NotFound("giving points is not available in this programme")
    return policy


def _page(
    request: Request, me: Me, policy: TransfersSection, *, status: int = 200,
    error: str | None = None, to: str = "", amount: str = "", done: bool = False,
) -> HTMLResponse:  # fmt: skip
    with get_database(request).transaction(readonly=True) as session:
        wallets = views.balances_of(
            session, programme=me.programme, member=me.member, section=me.site.section,
            now=utcnow(),
        )  # fmt: skip
    points = next((b.available for b in wallets if b.wallet.code == "points"), 0)
    return render(
        request, "give.html", site=me.site, me=me, page="give", policy=policy, points=points,
        error=error, to=to, amount=amount, done=done, nonce=secrets.token_urlsafe(16),
        status=status,
    )  # fmt: skip


@router.get("/{slug}/give", response_class=HTMLResponse)
def give_form(
    request: Request, me: MeDep, done: Annotated[str | None, Query(max_length=8)] = None
) -> HTMLResponse:
    """The form: who (email or card), how many points, the limits that apply."""
    return _page(request, me, _policy(request, me), done=bool(done))


def _ref(text: str) -> MemberRef:
    value = text.strip()
    return MemberRef(email=value) if "@" in value else MemberRef(card=value)


@router.post("/{slug}/give")
def give(
    request: Request,
    me: WriteMe,
    nonce: Nonce,
    to: Annotated[str, Form(max_length=320)] = "",
    amount: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Give: one transfer per form, whatever the clicks."""
    policy = _policy(request, me)
    fmt = me.fmt
    try:
        points = int(amount.strip())
        ref = _ref(to)
    except (ValueError, ValidationError):
        message = fmt.gettext(WHY["validation_error"])
        return _page(request, me, policy, status=422, error=message, to=to, amount=amount)
    try:
        with get_database(request).transaction() as session:
            transfers.give(
                session, programme=me.programme, sender_id=me.member.id, to=ref,
                wallet="points", amount=Decimal(points), reference=f"portal:{nonce}",
                channel="portal", actor=f"member:{me.member.id}",
            )  # fmt: skip
    except FideliaError as exc:
        reason = exc.as_dict()["error"]
        message = fmt.gettext(WHY.get(reason, WHY["validation_error"]))
        status = 409 if exc.status_code == 404 else exc.status_code
        return _page(request, me, policy, status=status, error=message, to=to, amount=amount)
    return RedirectResponse(f"{me.site.base}/give?done=1", status_code=303)
