"""The member portal's white label, previewed in the back-office (issue 13): the ``portal``
section of the live document (name, colours, logo, icon, fonts, legal pages, support, host,
default language) with a drawn preview of a portal page in the programme's colours, and links
that open the real portal. The section is edited in the programme document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from pydantic import ValidationError

from fidelia import versions
from fidelia.auth.dependencies import get_database
from fidelia.programmes.portal_section import PortalSection, Theme
from fidelia.web.access import ReadPage
from fidelia.web.templating import render

router = APIRouter()


def _section(raw: Mapping[str, Any]) -> tuple[PortalSection, bool]:
    """The live ``portal`` section and whether the document declares one (defaults if not)."""
    found = raw.get("portal")
    if not found:
        return PortalSection(), False
    try:
        return PortalSection.model_validate(found), True
    except ValidationError:  # a document older than a stricter schema: the portal's defaults
        return PortalSection(), False


def mock(theme: Theme, name: str, title: str, button: str) -> Markup:
    """A small drawing of a portal page in the theme's colours (SVG: no inline style, which
    the back-office's Content-Security-Policy forbids)."""
    font = escape(theme.font_family or "system-ui, sans-serif")
    return Markup(
        f'<svg class="portal-mock" viewBox="0 0 240 320" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<rect width="240" height="320" rx="14" fill="{theme.background}"/>'
        f'<rect width="240" height="48" rx="14" fill="{theme.primary}"/>'
        f'<rect y="34" width="240" height="14" fill="{theme.primary}"/>'
        f'<text x="16" y="30" fill="{theme.surface}" font-family="{font}" font-size="15" '
        f'font-weight="700">{escape(name)}</text>'
        f'<rect x="14" y="66" width="212" height="120" rx="10" fill="{theme.surface}"/>'
        f'<text x="28" y="96" fill="{theme.text}" font-family="{font}" font-size="12">Points</text>'
        f'<text x="28" y="132" fill="{theme.text}" font-family="{font}" font-size="28" '
        'font-weight="700">1 250</text>'
        f'<rect x="28" y="150" width="184" height="8" rx="4" fill="{theme.background}"/>'
        f'<rect x="28" y="150" width="120" height="8" rx="4" fill="{theme.accent}"/>'
        f'<rect x="14" y="204" width="212" height="40" rx="10" fill="{theme.accent}"/>'
        f'<text x="120" y="229" fill="{theme.surface}" font-family="{font}" font-size="13" '
        f'text-anchor="middle">{escape(button)}</text>'
        "</svg>"
    )


@router.get("/p/{slug}/portal", response_class=HTMLResponse)
def show(request: Request, page: ReadPage) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        section, declared = versions.section(session, page.programme, "portal-preview", _section)
    _ = page.fmt.gettext
    name = section.name or page.programme.name
    colours = section.theme.model_dump(
        include={"primary", "accent", "background", "surface", "text"}
    )
    return render(
        request,
        "portal_preview.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        active="portal",
        section=section,
        declared=declared,
        name=name,
        colours=colours,
        mock=mock(section.theme, name, _("Preview of a portal page"), _("See the rewards")),
        portal=f"/portal/{page.programme.slug}",
    )
