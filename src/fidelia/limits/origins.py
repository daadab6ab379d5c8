"""Which origins the programmes allow (for :class:`fidelia.limits.http.Cors`)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Programme


def allowed_origins(database: Database) -> Callable[[], set[str]]:
    """A loader of the union of every programme's ``settings.api.cors_origins``."""

    def load() -> set[str]:
        with database.transaction(readonly=True) as session:
            found: set[str] = set()
            for settings in session.scalars(select(Programme.settings)):
                found.update(((settings or {}).get("api") or {}).get("cors_origins") or [])
            return found

    return load
