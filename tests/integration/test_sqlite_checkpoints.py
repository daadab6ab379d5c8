"""SQLite's write-ahead log copied back by the API process's checkpoint thread (fidelia.db)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from fidelia.db import BACKSTOP_PAGES, Database


def _fill(database: Database, rows: int) -> None:
    with database.transaction() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"))
    for start in range(0, rows, 100):
        with database.transaction() as session:
            session.execute(
                text("INSERT INTO t (v) VALUES (:v)"),
                [{"v": "x" * 500} for _ in range(start, start + 100)],
            )


def _copied_back(path: Path) -> bool:
    """Whether the rows are in the database file itself (~1.5 MB of them), not only in its
    log: the file grows when a checkpoint copies the log's pages into it."""
    return path.stat().st_size > 1_000_000


def test_commits_leave_the_log_to_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    database = Database.from_url(f"sqlite:///{path}", background_checkpoints=True)
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
        _fill(database, 3_000)  # ~400 pages: under the backstop, nothing copied by the commits
        assert not _copied_back(path)
        checkpointer = database.start_checkpointer(interval=0.05)
        assert checkpointer is not None
        deadline = time.monotonic() + 10
        while not _copied_back(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _copied_back(path)
        assert checkpointer.passes >= 1
        _fill(database, 1_000)  # the writer goes on while the thread runs
        with database.transaction(readonly=True) as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar() == 4_000
    finally:
        database.dispose()
    assert database.checkpointer is None


def test_a_plain_engine_checkpoints_by_itself(tmp_path: Path) -> None:
    """Commands and tests keep SQLite's default: no thread, a checkpoint at 1,000 pages."""
    path = tmp_path / "d.db"
    database = Database.from_url(f"sqlite:///{path}")
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1_000
        assert database.start_checkpointer() is None
        _fill(database, 9_000)  # ~1,200 pages: a commit went past 1,000 and copied them
        assert _copied_back(path)
    finally:
        database.dispose()
    memory = Database.from_url("sqlite://", background_checkpoints=True)
    try:
        assert memory.start_checkpointer() is None  # no log to copy in memory
    finally:
        memory.dispose()


def test_killed_process_loses_no_commit(tmp_path: Path) -> None:
    """Committed rows still in the log when the process dies (kill -9, the thread never ran
    its last checkpoint) are in the database when it is opened again."""
    path = tmp_path / "k.db"
    script = f"""
import os, signal
from fidelia.db import Database
from sqlalchemy import text
database = Database.from_url("sqlite:///{path}", background_checkpoints=True)
with database.transaction() as session:
    session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
for i in range(20):
    with database.transaction() as session:
        session.execute(text("INSERT INTO t (v) VALUES (:v)"), [{{"v": "y" * 300}}] * 50)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert done.returncode == -9, done.stderr.decode()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1_000
