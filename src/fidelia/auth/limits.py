"""Rate limits: one token bucket per API key and route class (``read``: GET and HEAD,
``write``: other methods, ``bulk``: batches, imports and exports), sized by the programme's
``settings.api.rate_limits``.

A bucket holds up to ``burst`` tokens and gains ``per_second`` tokens a second; a request takes
one, or is refused (429, ``Retry-After``: the whole seconds until a token is back) and changes
nothing else. Two stores:

- ``database`` (the default on PostgreSQL): the ``rate_buckets`` row is refilled and taken
  from in one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, autocommitted on a small
  pool of its own. The row lock makes concurrent takes from any number of API processes
  serialise, so the limit holds across processes; the refill arithmetic reads the stamp the
  last take wrote (clocks of the API hosts are assumed NTP-close; a stamp from the future
  refills nothing rather than going negative).
- ``memory`` (the default on SQLite, where one process serves): the same arithmetic in a dict
  under a lock.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Float, Table, case, cast, create_engine, event, literal
from sqlalchemy.dialects import postgresql, sqlite

from fidelia.errors import RateLimited
from fidelia.models import RateBucket

BULK_SUFFIXES = ("/events/batch", "/members/import", "/events/import")
BULK_PREFIXES = ("/api/v1/exports",)
# As ``ProgrammeSettings``' defaults: above what one key can get through on one machine today
# (docs/benchmarks.md), so only a runaway or hostile client meets them unless a programme
# sets its own.
DEFAULTS: dict[str, tuple[float, int]] = {
    "read": (1000, 2000),
    "write": (1000, 2000),
    "bulk": (20, 100),
}


def route_class(method: str, path: str) -> str:
    """``bulk`` for batches, imports and exports, else ``read`` or ``write`` by method."""
    if path.endswith(BULK_SUFFIXES) or path.startswith(BULK_PREFIXES):
        return "bulk"
    return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"


def limit_of(settings: dict[str, Any], cls: str) -> tuple[float, int] | None:
    """(per_second, burst) of the class in the programme's settings; None: not limited."""
    limits = (settings.get("api") or {}).get("rate_limits")
    if limits is None:
        return DEFAULTS.get(cls)
    found = limits.get(cls)
    return None if found is None else (float(found["per_second"]), int(found["burst"]))


@dataclass
class Taken:
    allowed: bool
    tokens: float  # left after the take, or the level that was short of one

    def retry_after(self, per_second: float) -> int:
        return max(1, math.ceil((1 - self.tokens) / per_second))


class MemoryStore:
    def __init__(self) -> None:
        self._buckets: dict[tuple[uuid.UUID, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: uuid.UUID, cls: str, rate: float, burst: int, now: float) -> Taken:
        with self._lock:
            tokens, stamp = self._buckets.get((key_id, cls), (float(burst), now))
            level = min(float(burst), tokens + rate * max(0.0, now - stamp))
            allowed = level >= 1
            left = level - 1 if allowed else level
            self._buckets[(key_id, cls)] = (left, now)
            return Taken(allowed, left)


class DatabaseStore:
    def __init__(self, engine: Engine) -> None:
        self.postgres = engine.dialect.name == "postgresql"
        self.engine = _autocommit_engine(engine) if self.postgres else engine
        self.table: Table = RateBucket.__table__  # type: ignore[assignment]

    def take(self, key_id: uuid.UUID, cls: str, rate: float, burst: int, now: float) -> Taken:
        t = self.table.c
        at = cast(literal(now), Float)
        elapsed = case((at > t.stamp, at - t.stamp), else_=0.0)
        refill = t.tokens + literal(rate) * elapsed
        level = case((refill > burst, float(burst)), else_=refill)
        dialect = postgresql if self.postgres else sqlite
        statement = (
            dialect.insert(self.table)
            .values(key_id=key_id, route_class=cls, tokens=burst - 1.0, stamp=now, allowed=True)
            .on_conflict_do_update(
                index_elements=[t.key_id, t.route_class],
                set_={
                    "tokens": case((level >= 1, level - 1), else_=level),
                    "stamp": at,
                    "allowed": level >= 1,
                },
            )
            .returning(t.allowed, t.tokens)
        )
        with self.engine.begin() as connection:  # autocommit on PostgreSQL: one round trip
            allowed, tokens = connection.execute(statement).one()
        return Taken(bool(allowed), float(tokens))


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _autocommit_engine(engine: Engine) -> Engine:
    """A small pool of its own for the buckets (one per database and process, however many
    apps are made): each upsert commits by itself (autocommit, one round trip), and without
    waiting for the WAL flush (``synchronous_commit = off``, set on these connections only: a
    bucket need not survive a crash; the app's commits still wait)."""
    key = engine.url.render_as_string(hide_password=False)
    with _ENGINES_LOCK:
        found = _ENGINES.get(key)
        if found is None:
            found = _ENGINES[key] = _new_autocommit_engine(engine)
        return found


def _new_autocommit_engine(engine: Engine) -> Engine:
    own = create_engine(engine.url, pool_size=2, max_overflow=8, isolation_level="AUTOCOMMIT")

    @event.listens_for(own, "connect")
    def _no_flush(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET synchronous_commit = off")
        cursor.close()

    return own


class Limiter:
    """Takes a token for each request of a key; raises :class:`RateLimited` when none is left."""

    def __init__(self, store: MemoryStore | DatabaseStore) -> None:
        self.store = store

    def check(
        self,
        *,
        key_id: uuid.UUID,
        settings: dict[str, Any],
        method: str,
        path: str,
        now: float | None = None,
    ) -> None:
        cls = route_class(method, path)
        limit = limit_of(settings, cls)
        if limit is None:
            return
        rate, burst = limit
        taken = self.store.take(key_id, cls, rate, burst, time.time() if now is None else now)
        if not taken.allowed:
            wait = taken.retry_after(rate)
            raise RateLimited(
                f"rate limit of this key for {cls} calls reached ({burst} at once, "
                f"{rate:g} a second): retry in {wait} s",
                retry_after=wait,
            )


def make_limiter(engine: Engine, store: str = "auto") -> Limiter:
    """``auto``: the database on PostgreSQL, memory on SQLite (one process)."""
    if store == "auto":
        store = "database" if engine.dialect.name == "postgresql" else "memory"
    if store == "database":
        return Limiter(DatabaseStore(engine))
    if store == "memory":
        return Limiter(MemoryStore())
    raise ValueError(f"FIDELIA_RATE_LIMIT_STORE: {store!r} is not auto, database or memory")
