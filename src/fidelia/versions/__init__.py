"""The live version of a programme's document, as the domains read their own section of it.

A version never changes once stored, so what a domain derives from it (a parsed section, a
compiled index) is cached per (what, programme, version): :func:`section` reads the live
document once per version and keeps the parsed result; a new version is a new key. The cache
is bounded (it is emptied past :data:`LIMIT` entries: rarely, and only costs a re-read).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.models import Programme, ProgrammeVersion

T = TypeVar("T")
LIMIT = 2048
_CACHE: dict[tuple[str, uuid.UUID, int], Any] = {}
_LOCK = threading.Lock()


def live_document(session: Session, programme: Programme) -> Mapping[str, Any]:
    """The programme's live document (empty before its first version)."""
    if not programme.live_version:
        return {}
    found = session.scalar(
        select(ProgrammeVersion.document).where(
            ProgrammeVersion.programme_id == programme.id,
            ProgrammeVersion.version == programme.live_version,
        )
    )
    return found or {}


def section(
    session: Session, programme: Programme, name: str, parse: Callable[[Mapping[str, Any]], T]
) -> T:
    """``parse(live document)``, computed once per live version and kept; ``name`` says which
    derivation it is (one per domain section)."""
    key = (name, programme.id, programme.live_version)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]  # type: ignore[no-any-return]
    value = parse(live_document(session, programme))
    with _LOCK:
        if len(_CACHE) >= LIMIT:
            _CACHE.clear()
        _CACHE[key] = value
    return value
