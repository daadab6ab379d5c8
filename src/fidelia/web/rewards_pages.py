"""Rewards and vouchers in the back-office (issue 12): the catalogue with stock, availability
and redemptions per state; the voucher pools with their codes per state, where codes are
generated from the pattern or imported from a CSV file; the latest redemptions; donation
totals per association. Writes go through the services the API uses and are audited."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError, ValidationFailed
from fidelia.models import Programme, Redemption
from fidelia.rewards import donations, pools
from fidelia.rewards import service as catalogue
from fidelia.web.access import BASE, Page, ReadPage, WritePage
from fidelia.web.templating import render

router = APIRouter()

MAX_CODES = 100_000  # per generation or import, as the API
MAX_UPLOAD = 4 * 1024 * 1024  # bytes of a CSV of codes


def _by_reward(session: Session, programme: Programme) -> dict[Any, dict[str, int]]:
    rows = session.execute(
        select(Redemption.reward_id, Redemption.status, func.count())
        .where(Redemption.programme_id == programme.id)
        .group_by(Redemption.reward_id, Redemption.status)
    )
    out: dict[Any, dict[str, int]] = {}
    for reward_id, status, count in rows:
        out.setdefault(reward_id, {})[status] = int(count)
    return out


def _page(
    request: Request,
    page: Page,
    *,
    status: int = 200,
    error: str | None = None,
    error_pool: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        rewards = catalogue.list_rewards(session, programme=page.programme, archived=True)
        found = pools.list_pools(session, programme=page.programme)
        by_pool = pools.counts(session, pool_ids=[p.id for p in found])
        latest = list(
            session.scalars(
                select(Redemption)
                .where(Redemption.programme_id == page.programme.id)
                .order_by(Redemption.requested_at.desc(), Redemption.id.desc())
                .limit(50)
            )
        )
        context = {
            "rewards": rewards,
            "by_reward": _by_reward(session, page.programme),
            "pools": [(p, by_pool.get(p.id, {})) for p in found],
            "latest": latest,
            "codes": {r.id: r.code for r in rewards},
            "donations": donations.totals(session, programme=page.programme),
        }
    return render(
        request,
        "rewards.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        active="rewards",
        status=status,
        error=error,
        error_pool=error_pool,
        done=done,
        **context,
    )


@router.get("/p/{slug}/rewards", response_class=HTMLResponse)
def show(request: Request, page: ReadPage, done: str | None = None) -> HTMLResponse:
    return _page(request, page, done=done if done in ("generated", "imported") else None)


def _count(text: str) -> int:
    try:
        count = int(text.strip())
    except ValueError:
        raise ValidationFailed.on("count", "a whole number") from None
    if not 1 <= count <= MAX_CODES:
        raise ValidationFailed.on("count", f"between 1 and {MAX_CODES:,}")
    return count


def _audit(session: Session, page: Page, action: str, pool: str, after: dict[str, Any]) -> None:
    audit.record(
        session,
        programme_id=page.programme.id,
        actor=page.actor,
        user_id=page.viewer.user.id,
        action=action,
        target_type="voucher_pool",
        target_id=pool,
        after=after,
    )


def _refused(request: Request, page: Page, pool: str, exc: FideliaError) -> HTMLResponse:
    if exc.status_code == 404:
        raise exc
    message = exc.fields[0].msg if exc.fields else exc.detail
    return _page(request, page, status=exc.status_code, error=message, error_pool=pool)


@router.post("/p/{slug}/rewards/pools/{code}/generate", response_class=HTMLResponse)
def generate(
    request: Request,
    page: WritePage,
    code: str,
    count: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Stock the pool with ``count`` codes from its pattern."""
    try:
        wanted = _count(count)
        with get_database(request).transaction() as session:
            made = pools.generate_codes(session, programme=page.programme, code=code, count=wanted)
            _audit(session, page, "voucher_pool.generate", code, {"codes": len(made)})
    except FideliaError as exc:
        return _refused(request, page, code, exc)
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/rewards?done=generated", 303)


def _codes_of(upload: bytes) -> list[str]:
    """The codes of a CSV file: the first column of each row, a header row ``code`` skipped."""
    try:
        text = upload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed.on("file", "the file is not UTF-8 text") from None
    codes = []
    for n, row in enumerate(csv.reader(io.StringIO(text))):
        if not row or not row[0].strip():
            continue
        value = row[0].strip()
        if n == 0 and value.lower() == "code":
            continue
        codes.append(value.upper())
    if not codes:
        raise ValidationFailed.on("file", "the file holds no code (one code per line)")
    if len(codes) > MAX_CODES:
        raise ValidationFailed.on("file", f"at most {MAX_CODES:,} codes per file")
    return codes


@router.post("/p/{slug}/rewards/pools/{code}/import", response_class=HTMLResponse)
def import_codes(
    request: Request,
    page: WritePage,
    code: str,
    file: UploadFile,
    bearer: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Add the codes of a CSV file to the pool, all or nothing (as the API)."""
    data = file.file.read(MAX_UPLOAD + 1)  # a sync route: the upload is spooled already
    return _import(request, page, code, data, bool(bearer))


def _import(request: Request, page: Page, code: str, data: bytes, bearer: bool) -> Response:
    try:
        if len(data) > MAX_UPLOAD:
            raise ValidationFailed.on("file", f"a file of at most {MAX_UPLOAD // 1024 // 1024} MB")
        raw = _codes_of(data)
        with get_database(request).transaction() as session:
            made = pools.import_codes(
                session, programme=page.programme, code=code, raw=raw, bearer=bearer
            )
            _audit(session, page, "voucher_pool.import", code, {"codes": len(made)})
    except FideliaError as exc:
        return _refused(request, page, code, exc)
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/rewards?done=imported", 303)
