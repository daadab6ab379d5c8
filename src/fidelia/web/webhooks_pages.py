"""Webhooks in the back-office: the subscriptions with their state (paused and why), pending
and failed deliveries, the latest deliveries; owners add a subscription (its secret shown
once), pause or resume one and send its failed deliveries again, through the webhooks
service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError, error_message
from fidelia.web.access import BASE, OwnerPage, Page, ReadPage
from fidelia.web.templating import render
from fidelia.webhooks import service as webhooks
from fidelia.webhooks.schemas import RedeliverIn, SubscriptionIn, SubscriptionPatch

router = APIRouter()


def _page(
    request: Request,
    page: Page,
    *,
    status: int = 200,
    secret: str | None = None,
    error: str | None = None,
    url: str = "",
    types: str = "*",
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        subs = webhooks.list_subscriptions(session, programme=page.programme)
        latest = {
            s.id: webhooks.deliveries(
                session, programme=page.programme, subscription_id=s.id, status=None,
                before=None, limit=10,
            )[0]
            for s in subs
        }  # fmt: skip
    return render(
        request, "webhooks.html", fmt=page.fmt, page=page, viewer=page.viewer, status=status,
        subs=subs, latest=latest, secret=secret, error=error, url=url, types=types,
    )  # fmt: skip


@router.get("/p/{slug}/webhooks", response_class=HTMLResponse)
def show(request: Request, page: ReadPage) -> HTMLResponse:
    return _page(request, page)


@router.post("/p/{slug}/webhooks", response_class=HTMLResponse)
def create(
    request: Request,
    page: OwnerPage,
    url: Annotated[str, Form(max_length=2000)] = "",
    types: Annotated[str, Form(max_length=2000)] = "*",
) -> HTMLResponse:
    wanted = [t.strip() for t in types.replace(",", " ").split() if t.strip()]
    try:
        data = SubscriptionIn(url=url.strip(), types=wanted)
        with get_database(request).transaction() as session:
            created = webhooks.create(session, programme=page.programme, data=data)
            _audit(session, page, "webhook.create", created.id, {"url": data.url,
                                                                 "types": data.types})  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _page(request, page, status=422, error=f"{where}: {error_message(first)}",
                     url=url, types=types)  # fmt: skip
    except FideliaError as exc:
        return _page(request, page, status=exc.status_code, error=exc.detail, url=url,
                     types=types)  # fmt: skip
    return _page(request, page, status=201, secret=created.secret)


@router.post("/p/{slug}/webhooks/{subscription_id}/status")
def set_status(
    request: Request,
    page: OwnerPage,
    subscription_id: uuid.UUID,
    status: Annotated[str, Form(pattern="^(active|paused)$")],
) -> Response:
    with get_database(request).transaction() as session:
        webhooks.update_subscription(
            session, programme=page.programme, subscription_id=subscription_id,
            data=SubscriptionPatch.model_validate({"status": status}),
        )  # fmt: skip
        _audit(session, page, f"webhook.{'resume' if status == 'active' else 'pause'}",
               subscription_id, {"status": status})  # fmt: skip
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/webhooks", status_code=303)


@router.post("/p/{slug}/webhooks/{subscription_id}/redeliver")
def redeliver(request: Request, page: OwnerPage, subscription_id: uuid.UUID) -> Response:
    with get_database(request).transaction() as session:
        n = webhooks.redeliver_range(
            session, programme=page.programme, subscription_id=subscription_id,
            data=RedeliverIn(),
        )  # fmt: skip
        _audit(session, page, "webhook.redeliver", subscription_id, {"redelivered": n})
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/webhooks", status_code=303)


def _audit(
    session: Session, page: Page, action: str, target: uuid.UUID, after: dict[str, object]
) -> None:
    audit.record(
        session,
        programme_id=page.programme.id, actor=page.actor, user_id=page.viewer.user.id,
        action=action, target_type="webhook", target_id=str(target), after=after,
    )  # fmt: skip
