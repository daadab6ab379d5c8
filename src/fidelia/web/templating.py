"""Jinja2 rendering: one environment, autoescaped, strict about undefined names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from fidelia.web.access import BASE
from fidelia.web.i18n import Formatter

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
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(
    request: Request, template: str, *, fmt: Formatter, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` for this reader (``_`` translates, ``fmt`` formats)."""
    context.setdefault("page", None)
    context.setdefault("viewer", None)
    html = environment.get_template(template).render(
        request=request, _=fmt.gettext, fmt=fmt, base=BASE, lang=fmt.language, **context
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
