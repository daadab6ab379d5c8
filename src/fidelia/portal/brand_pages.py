"""The white label's files: the theme stylesheet, the web app manifest and its icons, the
programme's own asset files (logo, icon, fonts), and its legal pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from fidelia.errors import NotFound
from fidelia.portal import icons
from fidelia.portal.access import SiteDep
from fidelia.portal.branding import asset_path, theme_css
from fidelia.portal.templating import render

router = APIRouter()
CACHE = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
ICON_SIZES = (192, 512)


@router.get("/{slug}/theme.css")
def theme(site: SiteDep) -> Response:
    return Response(theme_css(site.section), media_type="text/css", headers=CACHE)


@router.get("/{slug}/manifest.webmanifest")
def manifest(site: SiteDep) -> JSONResponse:
    """The web app manifest: the portal installs on a phone's home screen under the
    programme's name and colours."""
    section = site.section
    name = site.name
    return JSONResponse(
        {
            "name": name,
            "short_name": section.short_name or name[:12],
            "start_url": f"{site.base}/",
            "scope": f"{site.base}/",
            "display": "standalone",
            "background_color": section.theme.background,
            "theme_color": section.theme.primary,
            "lang": site.fmt.language,
            "icons": [
                {
                    "src": f"{site.base}/icon-{n}.png",
                    "sizes": f"{n}x{n}",
                    "type": "image/png",
                    "purpose": "any maskable",
                }
                for n in ICON_SIZES
            ],
        },
        media_type="application/manifest+json",
        headers=CACHE,
    )


@router.get("/{slug}/icon-{size}.png")
def icon(site: SiteDep, size: int) -> Response:
    if size not in ICON_SIZES:
        raise NotFound("no icon of this size")
    own = asset_path(site.programme, site.section.icon) if site.section.icon else None
    if own is not None:
        return FileResponse(own, media_type="image/png", headers=CACHE)
    theme = site.section.theme
    return Response(
        icons.png(size, theme.primary, theme.accent), media_type="image/png", headers=CACHE
    )


_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
}


@router.get("/{slug}/assets/{name}")
def asset(site: SiteDep, name: str) -> Response:
    """A file of the programme's asset folder that its portal section names."""
    section = site.section
    named = {section.logo, section.icon, *section.theme.font_files} - {None}
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    path = asset_path(site.programme, name) if name in named and suffix in _TYPES else None
    if path is None:
        raise NotFound("no such file")
    headers = dict(CACHE)
    if suffix == ".svg":
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return FileResponse(path, media_type=_TYPES[suffix], headers=headers)


@router.get("/{slug}/legal/{page}", response_class=HTMLResponse)
def legal(request: Request, site: SiteDep, page: str) -> HTMLResponse:
    for found in site.section.legal:
        if found.slug == page:
            return render(request, "legal.html", site=site, legal=found)
    raise NotFound("no such page")
