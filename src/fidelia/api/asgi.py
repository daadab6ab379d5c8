"""The ASGI app built from the environment, for `uvicorn fidelia.api.asgi:app --workers N`."""

from __future__ import annotations

from fidelia.api.app import create_app
from fidelia.api.runtime import settle_heap
from fidelia.config import get_settings
from fidelia.db import Database

_settings = get_settings()
app = create_app(
    Database.from_url(
        _settings.database_url,
        busy_timeout_ms=_settings.sqlite_busy_timeout_ms,
        pool_size=_settings.db_pool_size,
        background_checkpoints=True,  # SQLite: the log copied back by a thread (fidelia.db)
    ),
    embedded_worker=False,
)
settle_heap()
