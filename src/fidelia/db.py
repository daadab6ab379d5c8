"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL journal, a busy timeout, foreign keys on, and ``BEGIN IMMEDIATE`` for writers,
emitted through the engine's ``begin`` hook (the driver's own transaction handling breaks
savepoints). Read-only sessions begin ``DEFERRED`` so that readers never wait for the writer.

Checkpoints off the writer's path. SQLite copies the write-ahead log back into the database
(a checkpoint) from inside the commit that takes the log past ``wal_autocheckpoint`` pages
(1,000 by default): under the API's group commit that was one commit in ten or so, and 11 %
of the writer thread's time (py-spy, purchases with rules), paid while every waiting request
waits. A long-running process that writes a lot (the API server) can start a
:class:`Checkpointer` instead: a thread of its own runs ``PRAGMA wal_checkpoint(PASSIVE)``
on its own connection every ``interval`` seconds, which copies what is committed without
waiting for, or blocking, the writer or the readers (SQLite's documented way: "checkpoints in
a separate thread"); the process's connections keep an automatic checkpoint at a much larger
log (``BACKSTOP_PAGES``) should the thread ever fall behind. Durability is unchanged: a commit
is durable in the log, whenever the log is copied back.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

READONLY = "fidelia_readonly"
BACKSTOP_PAGES = 16_000  # ~64 MB of log before a commit checkpoints by itself (default 1,000)

log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (or none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str,
    *,
    busy_timeout_ms: int = 30_000,
    pool_size: int = 10,
    background_checkpoints: bool = False,
) -> Engine:
    """``background_checkpoints``: on an SQLite file, the connections leave checkpoints to a
    :class:`Checkpointer` (started by :meth:`Database.start_checkpointer`) up to a backstop."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _configure_sqlite(engine, busy_timeout_ms, background_checkpoints)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _is_file(engine: Engine) -> bool:
    return engine.url.database not in (None, "", ":memory:")


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, background_checkpoints: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if _is_file(engine):
            cursor.execute("PRAGMA journal_mode=WAL")
            if background_checkpoints:
                cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(READONLY) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


class Checkpointer:
    """A thread that checkpoints an SQLite database's log every ``interval`` seconds (PASSIVE:
    it never waits for the writer or the readers); see the module's docstring."""

    def __init__(self, path: str, *, interval: float = 0.25, busy_timeout_ms: int = 1_000) -> None:
        self.path = path
        self.interval = interval
        self.busy_timeout_ms = busy_timeout_ms
        self.passes = 0  # checkpoints run, for tests and logs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="fidelia-sqlite-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def checkpoint(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, pages in the log, pages copied)."""
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.passes += 1
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(connection)
                except sqlite3.Error:  # the database busy or gone: the backstop still holds
                    log.warning("background checkpoint failed", exc_info=True)
            self.checkpoint(connection)  # what the last writes left, before the process ends
        except sqlite3.Error:
            log.warning("background checkpoint failed", exc_info=True)
        finally:
            connection.close()


class Database:
    """The engine plus two session factories: read-write and read-only.

    On SQLite, writers of this process also queue on a lock before ``BEGIN IMMEDIATE``: the
    database admits one writer at a time anyway, and a queue is fair where SQLite's busy
    handler (sleep and retry) lets some writers wait for seconds under load.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_lock = threading.Lock() if is_sqlite(engine) else None
        self.checkpointer: Checkpointer | None = None
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

    def start_checkpointer(self, *, interval: float = 0.25) -> Checkpointer | None:
        """On an SQLite file whose engine leaves checkpoints to a thread (``make_engine``'s
        ``background_checkpoints``), start that thread; elsewhere nothing."""
        if self.checkpointer is not None:
            return self.checkpointer
        if not is_sqlite(self.engine) or not _is_file(self.engine):
            return None
        with self.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        if pages != BACKSTOP_PAGES:  # the connections still checkpoint by themselves
            return None
        self.checkpointer = Checkpointer(str(self.engine.url.database), interval=interval)
        self.checkpointer.start()
        return self.checkpointer

    def stop_checkpointer(self) -> None:
        checkpointer, self.checkpointer = self.checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()

    def dispose(self) -> None:
        self.stop_checkpointer()
        self.engine.dispose()
