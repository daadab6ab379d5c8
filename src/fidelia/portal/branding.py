"""A programme's white label as the portal uses it: the live document's ``portal`` section
(cached per immutable version), the theme stylesheet, the host names that serve a portal."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.models import Programme
from fidelia.programmes.portal_section import PortalSection

_HOSTS: dict[str, str] = {}
_HOSTS_AT = [0.0]
_LOCK = threading.Lock()
HOSTS_TTL = 30.0


def assets_root() -> Path:
    """Where programmes' logo, icon and font files live: ``<root>/<programme slug>/<file>``."""
    return Path(os.environ.get("FIDELIA_PORTAL_ASSETS", "portal-assets")).resolve()


def asset_path(programme: Programme, name: str) -> Path | None:
    """The file ``name`` of the programme's asset folder, if it exists (no path escapes)."""
    folder = (assets_root() / programme.slug).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path


def section_for(session: Session, programme: Programme) -> PortalSection:
    """The portal section of the live version (defaults when there is none)."""
    return versions.section(session, programme, "portal", _parse)


def _parse(document: Mapping[str, Any]) -> PortalSection:
    raw = document.get("portal")
    try:
        return PortalSection.model_validate(raw) if raw else PortalSection()
    except ValidationError:  # a document applied before a stricter schema: the defaults
        return PortalSection()


def theme_css(section: PortalSection) -> str:
    """The programme's colours and fonts as CSS custom properties (served as a file: the
    pages' CSP allows no inline style)."""
    theme = section.theme
    faces = "".join(
        f'@font-face{{font-family:"brand";src:url("assets/{name}");font-display:swap;}}\n'
        for name in theme.font_files
    )
    family = f'"brand", {_quoted(theme.font_family)}, ' if theme.font_files else ""
    if not theme.font_files and theme.font_family:
        family = f"{_quoted(theme.font_family)}, "
    return (
        f"{faces}:root{{--primary:{theme.primary};--accent:{theme.accent};"
        f"--bg:{theme.background};--surface:{theme.surface};--text:{theme.text};"
        f"--font:{family}system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;}}\n"
    )


def _quoted(name: str | None) -> str:
    return '"' + (name or "").replace('"', "").replace("\\", "").replace(";", "") + '"'


def cached_hosts() -> dict[str, str] | None:
    """Host name -> programme slug, if read less than 30 seconds ago (else None)."""
    with _LOCK:
        if time.monotonic() - _HOSTS_AT[0] < HOSTS_TTL:
            return dict(_HOSTS)
    return None


def refresh_hosts(session: Session) -> dict[str, str]:
    """Read again the host names of programmes whose portal section names one."""
    now = time.monotonic()
    found: dict[str, str] = {}
    for programme in session.scalars(select(Programme).where(Programme.live_version > 0)):
        section = section_for(session, programme)
        if section.host:
            found[section.host] = programme.slug
    with _LOCK:
        _HOSTS.clear()
        _HOSTS.update(found)
        _HOSTS_AT[0] = now
    return found


def forget_hosts() -> None:
    """Re-read the host names at the next request (tests, after a document is applied)."""
    with _LOCK:
        _HOSTS_AT[0] = 0.0
