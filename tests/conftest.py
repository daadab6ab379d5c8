"""Test databases: every run creates its own SQLite file and PostgreSQL database, built by the
migrations, and drops them at the end. Tests isolate themselves by creating their own programme
(every row belongs to one), so services commit for real, as in production.

PostgreSQL comes from ``FIDELIA_TEST_DATABASE_URL``; without it the PostgreSQL half of the suite
is skipped, unless ``FIDELIA_REQUIRE_POSTGRES=1`` (as in CI), which turns that into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from fidelia.db import Database, make_engine, normalise_url
from fidelia.migrations import upgrade

pytest_plugins = ["tests.fixtures.factories"]

BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str | None:
    url = os.environ.get("FIDELIA_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("FIDELIA_REQUIRE_POSTGRES") == "1":
            pytest.fail("FIDELIA_REQUIRE_POSTGRES=1 but FIDELIA_TEST_DATABASE_URL is not set")
        return None
    return normalise_url(url)


def create_pg_database(prefix: str = "fidelia_test") -> str | None:
    """Create a fresh PostgreSQL database and return its URL (None if PostgreSQL is not set)."""
    admin_url = _pg_admin_url()
    if admin_url is None:
        return None
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    admin_url = _pg_admin_url()
    assert admin_url is not None
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def new_database(backend: str, tmp_dir: Path) -> tuple[Database, str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / f'fidelia-{uuid.uuid4().hex[:8]}.db'}"
    else:
        created = create_pg_database()
        if created is None:
            pytest.skip("PostgreSQL not configured (set FIDELIA_TEST_DATABASE_URL)")
        url = created
    engine = make_engine(url)
    upgrade(engine)
    return Database(engine), url


def dispose_database(database: Database, url: str) -> None:
    database.dispose()
    if make_url(url).get_backend_name() == "postgresql":
        drop_pg_database(url)


@pytest.fixture(scope="session", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per backend, shared by the session's tests."""
    db, url = new_database(request.param, tmp_path_factory.mktemp(request.param))
    yield db
    dispose_database(db, url)


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of its own, for tests that need the whole database (jobs, migrations).

    Parametrise indirectly with the backend name."""
    backend = getattr(request, "param", "sqlite")
    db, url = new_database(backend, tmp_path)
    yield db
    dispose_database(db, url)


@pytest.fixture
def backend(database: Database) -> str:
    return database.engine.dialect.name
