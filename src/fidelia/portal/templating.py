"""Jinja2 rendering for the portal: one autoescaped environment, strict about undefined names,
the same security headers as the back-office."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from fidelia.portal.access import BASE, FORM_COOKIE, Me, Site, form_token, secure

TEMPLATES = Path(__file__).parent / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "svg"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(
    request: Request,
    template: str,
    *,
    site: Site,
    me: Me | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` for this reader; pages before sign-in get a form token cookie."""
    token = None if me is not None else form_token(request)
    context.setdefault("page", None)
    html = environment.get_template(template).render(
        request=request,
        _=site.fmt.gettext,
        fmt=site.fmt,
        site=site,
        me=me,
        base=site.base,
        portal=BASE,
        lang=site.fmt.language,
        form_token=token,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if token is not None:
        response.set_cookie(
            FORM_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path=site.base,
        )
    return response
