"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL journal, a busy timeout, foreign keys on, and ``BEGIN IMMEDIATE`` for writers,
emitted through the engine's ``begin`` hook (the driver's own transaction handling breaks
savepoints). Read-only sessions begin ``DEFERRED`` so that readers never wait for the writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

READONLY = "fidelia_readonly"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (or none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(READONLY) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The engine plus two session factories: read-write and read-only.

    On SQLite, writers of this process also queue on a lock before ``BEGIN IMMEDIATE``: the
    database admits one writer at a time anyway, and a queue is fair where SQLite's busy
    handler (sleep and retry) lets some writers wait for seconds under load.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_lock = threading.Lock() if is_sqlite(engine) else None
        self.writer = sessionmaker(engine, expire_on_commit=False)
        self.reader = sessionmaker(
            engine.execution_options(**{READONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold this process's place in the queue of writers (SQLite only)."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception."""
        if readonly:
            with self.reader() as session, session.begin():
                yield session
            return
        with self.writing(), self.writer() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
