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
  A process takes a few tokens ahead when the rate allows (``lease``: 50 ms of the rate, at
  most a tenth of the burst and 100; one for small limits, which stay exact) and spends them
  in memory for up to ``HOLD`` seconds: a busy key then costs one round trip per lease, not
  per request, and its processes do not queue on the bucket's row for every call. The limit
  still holds across processes (a leased token was taken from the shared bucket); what a
  lease leaves unspent when it lapses is lost, so a key may get slightly less, never more.
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


def lease_size(rate: float, burst: int) -> int:
    """Tokens one process takes from the shared bucket at once (see the module's docstring)."""
    return max(1, min(int(rate * 0.05), burst // 10, 100))


class DatabaseStore:
    HOLD = 1.0  # seconds a process may spend tokens it took ahead

    def __init__(self, engine: Engine) -> None:
        self.postgres = engine.dialect.name == "postgresql"
        self.engine = _autocommit_engine(engine) if self.postgres else engine
        self.table: Table = RateBucket.__table__  # type: ignore[assignment]
        self._leases: dict[tuple[uuid.UUID, str], tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._fetching: dict[tuple[uuid.UUID, str], threading.Lock] = {}

    def holds(self, key_id: uuid.UUID, cls: str, now: float) -> bool:
        """Whether the next take of this key and class is served from this process's lease."""
        with self._lock:
            left, since = self._leases.get((key_id, cls), (0, 0.0))
            return left >= 1 and 0 <= now - since < self.HOLD

    def take(self, key_id: uuid.UUID, cls: str, rate: float, burst: int, now: float) -> Taken:
        found = self._from_lease(key_id, cls, now)
        if found is not None:
            return found
        # One thread of the process fetches a key's lease at a time; the others then spend it
        # (each fetching its own would overwrite the others' leases and lose their tokens).
        with self._lock:
            fetching = self._fetching.setdefault((key_id, cls), threading.Lock())
        with fetching:
            found = self._from_lease(key_id, cls, now)
            if found is not None:
                return found
            granted, tokens = self._take(key_id, cls, rate, burst, now, lease_size(rate, burst))
            if granted > 1:
                with self._lock:
                    self._leases[(key_id, cls)] = (granted - 1, now)
        return Taken(granted >= 1, tokens)

    def _from_lease(self, key_id: uuid.UUID, cls: str, now: float) -> Taken | None:
        with self._lock:
            left, since = self._leases.get((key_id, cls), (0, 0.0))
            if left >= 1 and 0 <= now - since < self.HOLD:
                self._leases[(key_id, cls)] = (left - 1, since)
                return Taken(True, float(left - 1))
        return None

    def _take(
        self, key_id: uuid.UUID, cls: str, rate: float, burst: int, now: float, lease: int
    ) -> tuple[int, float]:
        """Take ``lease`` tokens from the shared bucket if it holds them, else one if it holds
        one: (how many were taken, the bucket's level after)."""
        t = self.table.c
        at = cast(literal(now), Float)
        elapsed = case((at > t.stamp, at - t.stamp), else_=0.0)
        refill = t.tokens + literal(rate) * elapsed
        level = case((refill > burst, float(burst)), else_=refill)
        grant = case((level >= lease, lease), (level >= 1, 1), else_=0)
        first = min(lease, burst) if burst >= 1 else 0
        dialect = postgresql if self.postgres else sqlite
        statement = (
            dialect.insert(self.table)
            .values(
                key_id=key_id,
                route_class=cls,
                tokens=float(burst - first),
                stamp=now,
                allowed=first >= 1,
                granted=first,
            )
            .on_conflict_do_update(
                index_elements=[t.key_id, t.route_class],
                set_={
                    "tokens": level - grant,
                    "stamp": at,
                    "allowed": level >= 1,
                    "granted": grant,
                },
            )
            .returning(t.granted, t.tokens)
        )
        with self.engine.begin() as connection:  # autocommit on PostgreSQL: one round trip
            granted, tokens = connection.execute(statement).one()
        return int(granted), float(tokens)


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
