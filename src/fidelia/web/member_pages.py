"""Members: the search by any identity, the member 360° view, and adjusting points."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations
from fidelia.ledger import repository as ledger_repo
from fidelia.ledger import wallets as wallet_service
from fidelia.ledger.errors import AlreadyPosted
from fidelia.members import service as members
from fidelia.models import Programme, Wallet
from fidelia.transfers import service as transfers
from fidelia.web import member_view
from fidelia.web.access import BASE, Page, ReadPage, WritePage
from fidelia.web.templating import render

router = APIRouter()
REASON_MAX = 500


@router.get("/p/{slug}/members", response_class=HTMLResponse)
def search(
    request: Request, page: ReadPage, q: Annotated[str, Query(max_length=320)] = ""
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        found = member_view.search(session, programme=page.programme, text=q)
        rows = [(m, members.details(session, member=m)["identities"]) for m in found]
    return render(
        request, "members.html", fmt=page.fmt, page=page, viewer=page.viewer, q=q, rows=rows
    )


def _member_page(
    request: Request,
    page: Page,
    member_id: uuid.UUID,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    now = utcnow()
    with get_database(request).transaction(readonly=True) as session:
        view = member_view.load(session, programme=page.programme, member_id=member_id, now=now)
        giving = transfers.policy(session, page.programme)  # issue 16: give on behalf
    return render(
        request,
        "member.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        status=status,
        view=view,
        from_minor=wallet_service.from_minor,
        form=form or {"wallet": "points", "amount": "", "reason": ""},
        nonce=secrets.token_urlsafe(16),
        error=error,
        done=done,
        now=now,
        giving=giving,
    )


@router.get("/p/{slug}/members/{member_id}", response_class=HTMLResponse)
def show(
    request: Request,
    page: ReadPage,
    member_id: uuid.UUID,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    return _member_page(request, page, member_id, done=done)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ".").replace(" ", ""))
    except InvalidOperation as exc:
        raise ValidationFailed.on("amount", "not a number") from exc
    if not value.is_finite():
        raise ValidationFailed.on("amount", "not a number")
    return value


@router.post("/p/{slug}/members/{member_id}/adjust", response_class=HTMLResponse)
def adjust(
    request: Request,
    page: WritePage,
    member_id: uuid.UUID,
    wallet: Annotated[str, Form(max_length=32)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=REASON_MAX)] = "",
    nonce: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Credit or debit through the ledger's ``adjust`` (as ``POST /ledger/adjustments``), with
    the balance before and after in the audit log. The form's nonce is the idempotency key, so
    a form sent twice posts once."""
    form = {"wallet": wallet, "amount": amount, "reason": reason}
    programme = page.programme
    try:
        if not reason.strip():
            raise ValidationFailed.on("reason", "say why: the reason is kept in the ledger")
        value = _amount(amount)
        with get_database(request).transaction() as session:
            found = wallet_service.get_wallet(session, programme=programme, code=wallet)
            before = _balance(session, found, programme, member_id)
            txn = operations.adjust(
                session,
                programme=programme,
                member_id=member_id,
                wallet=wallet,
                amount=value,
                reason=reason.strip(),
                actor=page.actor,
                idempotency_key=f"backoffice:{nonce or secrets.token_urlsafe(16)}",
            )
            after = _balance(session, found, programme, member_id)
            audit.record(
                session,
                programme_id=programme.id,
                actor=page.actor,
                user_id=page.viewer.user.id,
                action="points.adjust",
                target_type="member",
                target_id=str(member_id),
                before={"wallet": wallet, "available": before},
                after={"wallet": wallet, "available": after, "transaction_id": str(txn.id)},
                reason=reason.strip(),
            )
    except AlreadyPosted:
        return RedirectResponse(_url(page, member_id, "adjusted"), status_code=303)
    except FideliaError as exc:
        if exc.status_code == 404:
            raise
        message = exc.fields[0].msg if exc.fields else exc.detail
        field = str(exc.fields[0].loc[-1]) if exc.fields else None
        return _member_page(
            request,
            page,
            member_id,
            status=exc.status_code,
            form={**form, "field": field},
            error=message,
        )
    return RedirectResponse(_url(page, member_id, "adjusted"), status_code=303)


def _url(page: Page, member_id: uuid.UUID, done: str) -> str:
    return f"{BASE}/p/{page.programme.slug}/members/{member_id}?done={done}"


def _balance(session: Session, wallet: Wallet, programme: Programme, member_id: uuid.UUID) -> str:
    members.get(session, programme=programme, member_id=member_id)
    account = ledger_repo.find_member_account(session, wallet=wallet, member_id=member_id)
    return str(wallet_service.from_minor(wallet, account.available if account else 0))
