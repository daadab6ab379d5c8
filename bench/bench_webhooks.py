"""Webhook deliveries per second to a local receiver, by 1 and 2 workers, against a plain
httpx loop posting the same bodies to the same receiver (the ceiling), in the same run.

The receiver is a trivial ASGI app (reads the body, answers 204) served by uvicorn in its
own process on 127.0.0.1. Each run records ``--deliveries`` notices (``--members`` members,
in order per member) for a programme with one subscription wanting them all, then starts the
workers (separate processes, already started and waiting, each running
:func:`fidelia.webhooks.dispatch.pump` in a loop with its own keep-alive client) and times
until every delivery is ``delivered``: sequencing, fan-out, claims, signing, HTTP and
settling included. The ceiling is one ``httpx.Client`` posting the same number of signed
bodies one after the other.

    python bench/bench_webhooks.py [--deliveries 1000] [--members 200] [--runs 3] [--quick]
        [--backend postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from bench.common import (
    baseline,
    database_url,
    emit,
    figure,
    log,
    postgres_available,
    quick_mode,
    stats,
)

NAME = "webhooks"
ROOT = Path(__file__).resolve().parent.parent


async def receiver(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Read the body, answer 204."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bench_webhooks:receiver", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT,
    )  # fmt: skip
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("receiver did not start")


def worker_main(url: str, ready: Any, start: Any, stop: Any) -> None:
    from fidelia.db import Database
    from fidelia.webhooks import dispatch

    database = Database.from_url(url)
    with dispatch.new_client() as client:
        dispatch.pump(database, client)  # warm: connections open, statements compiled
        ready.put(True)
        start.wait()
        while not stop.is_set():
            if not dispatch.pump(database, client):
                time.sleep(0.005)
    database.dispose()


def prepare(url: str, target: str) -> tuple[Any, uuid.UUID, uuid.UUID]:
    from fidelia.config import get_settings
    from fidelia.db import Database
    from fidelia.migrations import upgrade
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate
    from fidelia.webhooks import service
    from fidelia.webhooks.schemas import SubscriptionIn

    get_settings().webhooks_allow_loopback = True
    database = Database.from_url(url)
    upgrade(database.engine)
    with database.transaction() as session:
        programme = programmes.create(
            session,
            data=ProgrammeCreate(slug="bench", name="Bench", currency="EUR",
                                 timezone="Europe/Paris", country="FR"),
        )  # fmt: skip
        sub = service.create(
            session, programme=programme, data=SubscriptionIn(url=target, types=["*"])
        )
    return database, programme.id, sub.id


def record(database: Any, programme_id: uuid.UUID, count: int, members: int) -> None:
    from fidelia.notices import Notice, record_many

    ids = [uuid.uuid4() for _ in range(members)]
    at = datetime.now(UTC)
    rows = [
        Notice("points.earned", ids[i % members], at, {"wallet": "points", "points": i})
        for i in range(count)
    ]
    with database.transaction() as session:
        record_many(session, programme_id, rows)


def delivered(database: Any, subscription_id: uuid.UUID) -> int:
    from sqlalchemy import func, select

    from fidelia.models import WebhookDelivery

    with database.transaction(readonly=True) as session:
        return (
            session.scalar(
                select(func.count()).where(
                    WebhookDelivery.subscription_id == subscription_id,
                    WebhookDelivery.status == "delivered",
                )
            )
            or 0
        )


def through_workers(
    url: str, database: Any, ids: tuple[uuid.UUID, uuid.UUID], workers: int, count: int,
    members: int,
) -> float:  # fmt: skip
    programme_id, subscription_id = ids
    ctx = multiprocessing.get_context("spawn")
    ready, start, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(target=worker_main, args=(url, ready, start, stop)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)  # interpreters up, connected and waiting
    before = delivered(database, subscription_id)
    record(database, programme_id, count, members)
    started = time.perf_counter()
    start.set()
    while delivered(database, subscription_id) < before + count:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    for p in procs:
        p.join(timeout=30)
    return count / elapsed


def plain(target: str, count: int) -> float:
    import httpx

    from fidelia.webhooks.signing import sign

    body = b'{"id":"x","type":"points.earned","data":{"points":1}}'
    started = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        for i in range(count):
            headers = {
                "Content-Type": "application/json",
                "Fidelia-Delivery-Id": str(i),
                "Fidelia-Signature": sign("whsec_bench", int(time.time()), body),
            }
            client.post(target, content=body, headers=headers).raise_for_status()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    count, runs = (300, 1) if quick else (args.deliveries, args.runs)
    backend = args.backend or ("postgresql" if postgres_available() else "sqlite")
    port = free_port()
    target = f"http://127.0.0.1:{port}/hooks"
    proc = start_receiver(port)
    figures = []
    try:
        with tempfile.TemporaryDirectory() as tmp, database_url(backend, Path(tmp)) as url:
            database, programme_id, subscription_id = prepare(url, target)
            ids = (programme_id, subscription_id)
            ceiling, by = [], {1: [], 2: []}
            for run in range(runs):
                ceiling.append(plain(target, count))
                for workers in (1, 2):
                    by[workers].append(
                        through_workers(url, database, ids, workers, count, args.members)
                    )
                log(f"run {run}: plain {ceiling[-1]:.0f}/s, 1 worker {by[1][-1]:.0f}/s, "
                    f"2 workers {by[2][-1]:.0f}/s")  # fmt: skip
            database.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    base = baseline("plain httpx loop, one keep-alive connection, same receiver",
                    stats(ceiling), unit="deliveries/s")  # fmt: skip
    for workers in (1, 2):
        figures.append(figure(
            f"webhook deliveries, {workers} worker{'s' if workers > 1 else ''}, {backend} "
            f"({count} notices, {args.members} members)",
            stats(by[workers]), unit="deliveries/s", base=base,
            note="sequence, fan-out, claim, sign, POST, settle; receiver: uvicorn, 204",
        ))  # fmt: skip
    emit(NAME, figures)


if __name__ == "__main__":
    main()
