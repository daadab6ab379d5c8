"""The token bucket itself: its arithmetic in both stores, and on PostgreSQL a key's bucket
shared by several API processes (separate connections, separate interpreters) lets exactly
``burst`` requests through, never more."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine

from fidelia.auth import service as apikeys
from fidelia.auth.limits import DatabaseStore, Limiter, MemoryStore, lease_size, route_class
from fidelia.auth.schemas import Scope
from fidelia.db import Database
from fidelia.errors import RateLimited
from fidelia.models import Programme, RateBucket


def _key(database: Database, programme: Programme) -> uuid.UUID:
    with database.transaction() as session:
        key, _ = apikeys.create(session, programme=programme, name="bucket", scope=Scope.read)
        return key.id


def _hammer(url: str, key_id: str, takes: int) -> int:
    """One "API process": its own engine, ``takes`` requests; how many got a token."""
    engine = create_engine(url)
    store = DatabaseStore(engine)
    try:
        return sum(
            store.take(uuid.UUID(key_id), "write", 1e-6, 25, 1_000_000.0 + i).allowed
            for i in range(takes)
        )
    finally:
        engine.dispose()


def test_route_classes() -> None:
    assert route_class("GET", "/api/v1/members") == "read"
    assert route_class("POST", "/api/v1/members") == "write"
    assert route_class("POST", "/api/v1/events/batch") == "bulk"
    assert route_class("GET", "/api/v1/exports/members") == "bulk"


@pytest.mark.parametrize("store", ["memory", "database"])
def test_burst_then_refill_at_the_rate(
    store: str, database: Database, programme: Programme
) -> None:
    key_id = _key(database, programme)
    bucket = MemoryStore() if store == "memory" else DatabaseStore(database.engine)
    t0 = 1_000_000.0

    burst = [bucket.take(key_id, "read", 2.0, 3, t0).allowed for _ in range(4)]
    later = bucket.take(key_id, "read", 2.0, 3, t0 + 0.5)  # one token back after 0.5 s
    empty = bucket.take(key_id, "read", 2.0, 3, t0 + 0.5)
    skewed = bucket.take(key_id, "read", 2.0, 3, t0 - 100)  # a clock behind refills nothing

    assert burst == [True, True, True, False]
    assert later.allowed
    assert not empty.allowed
    assert empty.retry_after(2.0) == 1
    assert not skewed.allowed


def test_the_limiter_raises_429_naming_the_class(database: Database, programme: Programme) -> None:
    limiter = Limiter(MemoryStore())
    settings = {"api": {"rate_limits": {"write": {"per_second": 0.5, "burst": 1}}}}
    key_id = _key(database, programme)

    limiter.check(key_id=key_id, settings=settings, method="POST", path="/x", now=10.0)
    with pytest.raises(RateLimited) as refused:
        limiter.check(key_id=key_id, settings=settings, method="POST", path="/x", now=10.1)

    assert refused.value.headers == {"Retry-After": "2"}
    assert "write" in refused.value.detail


def test_a_bucket_holds_across_processes_on_postgresql(
    database: Database, programme: Programme, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("several API processes share a bucket on PostgreSQL (SQLite: one process)")
    key_id = _key(database, programme)
    url = database.engine.url.render_as_string(hide_password=False)

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        allowed = pool.starmap(_hammer, [(url, str(key_id), 20)] * 4)

    assert sum(allowed) == 25, allowed  # 80 requests from 4 processes, burst 25, no refill


def _hammer_leased(url: str, key_id: str, takes: int) -> int:
    """One "API process" taking ``takes`` tokens at one instant under a limit with leases."""
    engine = create_engine(url)
    store = DatabaseStore(engine)
    try:
        return sum(
            store.take(uuid.UUID(key_id), "write", 1000.0, 200, 2_000_000.0).allowed
            for _ in range(takes)
        )
    finally:
        engine.dispose()


def test_a_busy_key_takes_tokens_ahead_and_pays_one_round_trip_per_lease(
    database: Database, programme: Programme
) -> None:
    key_id = _key(database, programme)
    store = DatabaseStore(database.engine)
    t0 = 3_000_000.0
    assert lease_size(1000.0, 200) == 20
    assert lease_size(2.0, 3) == 1  # small limits stay exact, a token at a time

    def level() -> float:
        with database.transaction(readonly=True) as session:
            bucket = session.get_one(RateBucket, (key_id, "write"))
            return bucket.tokens

    first = [store.take(key_id, "write", 1000.0, 200, t0).allowed for _ in range(20)]
    after_one_lease = level()
    again = store.take(key_id, "write", 1000.0, 200, t0)
    after_two = level()
    lapsed = store.take(key_id, "write", 1000.0, 200, t0 + DatabaseStore.HOLD + 0.5)

    assert all(first)
    assert again.allowed
    assert lapsed.allowed
    assert after_one_lease == 180  # twenty taken at the first call, nineteen spent in memory
    assert after_two == 160
    assert not store.holds(key_id, "write", t0 + 10)  # a lapsed lease serves nothing


def test_leases_keep_the_limit_across_processes_on_postgresql(
    database: Database, programme: Programme, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("several API processes share a bucket on PostgreSQL (SQLite: one process)")
    key_id = _key(database, programme)
    url = database.engine.url.render_as_string(hide_password=False)

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        allowed = pool.starmap(_hammer_leased, [(url, str(key_id), 100)] * 4)

    assert sum(allowed) == 200, allowed  # 400 requests at one instant, burst 200, leases of 20


def test_threads_of_one_process_share_its_lease(database: Database, programme: Programme) -> None:
    key_id = _key(database, programme)

    class SlowStore(DatabaseStore):  # a round trip as slow as on a loaded server
        def _take(self, *args: Any) -> tuple[int, float]:
            time.sleep(0.05)
            return super()._take(*args)

    store = SlowStore(database.engine)
    allowed: list[bool] = []
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()  # all find the lease empty at once
        for _ in range(40):
            allowed.append(store.take(key_id, "write", 1000.0, 200, 4_000_000.0).allowed)
            time.sleep(0.002)  # requests arrive over time: a lease is not spent at once

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 320 takes at one instant, burst 200, leases of 20: no lease is lost to another thread's
    assert sum(allowed) == 200
