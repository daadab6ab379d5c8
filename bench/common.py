"""Shared helpers for the benchmark scripts, and the JSON contract they all follow.

The contract
------------
Every ``bench/bench_*.py`` is a standalone script that ``python -m bench`` runs in its own
interpreter (working directory: the repository root, ``PYTHONPATH`` set to it, so
``from bench.common import ...`` works). It may log anything to stderr and to stdout, but the
LAST line of its stdout must be one JSON object::

    {
      "name": "intake_http",                    # the benchmark, as in the table
      "figures": [
        {
          "figure": "single events over HTTP, SQLite",   # what is measured, short
          "unit": "req/s",                                # unit of median/min/max
          "median": 812.0, "min": 640.0, "max": 905.0,   # over "runs" measurements
          "runs": 30,                                     # how many measurements (optional)
          "higher_is_better": true,                       # optional, default true
          "baseline": {                                   # optional: ceiling or floor
            "kind": "ceiling",                            # "ceiling" or "floor"
            "label": "trivial FastAPI endpoint",
            "unit": "req/s",
            "median": 2400.0, "min": 2100.0, "max": 2600.0
          },
          "ratio": 0.34,                                  # optional: median / baseline median
          "note": "wrk, 16 connections; 2 cores shared with the server"
        }
      ],
      "notes": ["free text shown under the table"],       # optional
      "skipped": [{"figure": "...", "reason": "..."}]     # optional: what could not run
    }

``ratio`` is computed by the runner as ``median / baseline.median`` when the script leaves it
out. Scripts should run in a bounded time and address only 127.0.0.1. The runner asks for a
short run by setting ``FIDELIA_BENCH_QUICK=1`` in the environment (see :func:`quick_mode`);
PostgreSQL comes from ``FIDELIA_BENCH_DATABASE_URL`` (see :func:`pg_admin_url`).

Use :func:`figure`, :func:`baseline` and :func:`emit` to build and print that object.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
QUICK_ENV = "FIDELIA_BENCH_QUICK"
PG_ENV = "FIDELIA_BENCH_DATABASE_URL"

Figure = dict[str, Any]


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    median: float
    min: float
    max: float
    runs: int


def stats(values: Sequence[float]) -> Stats:
    """Median, min and max of several measurements."""
    if not values:
        raise ValueError("no measurements")
    return Stats(statistics.median(values), min(values), max(values), len(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no measurements")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- the JSON contract --------------------------------------------------------------------------


def baseline(
    label: str,
    measured: Stats | float,
    *,
    unit: str,
    kind: Literal["ceiling", "floor", "reference"] = "ceiling",
) -> dict[str, Any]:
    s = measured if isinstance(measured, Stats) else Stats(measured, measured, measured, 1)
    return {
        "kind": kind,
        "label": label,
        "unit": unit,
        "median": s.median,
        "min": s.min,
        "max": s.max,
    }


def figure(
    name: str,
    measured: Stats | float,
    *,
    unit: str,
    base: dict[str, Any] | None = None,
    ratio: float | None = None,
    note: str = "",
    higher_is_better: bool = True,
) -> Figure:
    """One row of the table. ``ratio`` defaults to median / baseline median."""
    s = measured if isinstance(measured, Stats) else Stats(measured, measured, measured, 1)
    if ratio is None and base is not None and base["median"]:
        ratio = s.median / base["median"]
    return {
        "figure": name,
        "unit": unit,
        "median": s.median,
        "min": s.min,
        "max": s.max,
        "runs": s.runs,
        "higher_is_better": higher_is_better,
        "baseline": base,
        "ratio": ratio,
        "note": note,
    }


def emit(
    name: str,
    figures: list[Figure],
    *,
    notes: Sequence[str] = (),
    skipped: Sequence[dict[str, str]] = (),
) -> None:
    """Print the result object as the last line of stdout."""
    result = {"name": name, "figures": figures, "notes": list(notes), "skipped": list(skipped)}
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


def run_on_both(
    name: str,
    description: str | None,
    measure: Callable[[str, Path, int, int], list[Figure]],
    *,
    what: str,
    quick_count: int,
) -> None:
    """The ``main`` of a benchmark measured on SQLite then PostgreSQL (``--runs``, at least 3;
    ``--count`` operations per run; ``--quick`` for 3 runs of ``quick_count``): each backend's
    figures from ``measure(backend, tmp_dir, runs, count)``, PostgreSQL skipped (and said)
    when it is not reachable."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs, count = (3, quick_count) if quick_mode(args.quick) else (max(args.runs, 3), args.count)
    figures: list[Figure] = []
    skipped: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        figures += measure("sqlite", Path(tmp), runs, count)
        if postgres_available():
            figures += measure("postgresql", Path(tmp), runs, count)
        else:
            skipped.append({"figure": f"{what}, PostgreSQL", "reason": "no PostgreSQL"})
    emit(name, figures, skipped=skipped)


def log(message: str) -> None:
    """Progress for humans, on stderr (stdout's last line is the result)."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def quick_mode(flag: bool = False) -> bool:
    return flag or os.environ.get(QUICK_ENV, "") not in ("", "0")


# -- the machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def postgres_version(url: str | None = None) -> str | None:
    try:
        from sqlalchemy import create_engine, text

        from fidelia.db import normalise_url

        engine = create_engine(
            normalise_url(url or pg_admin_url()), connect_args={"connect_timeout": 5}
        )
        try:
            with engine.connect() as conn:
                return str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0]
        finally:
            engine.dispose()
    except Exception:
        return None


def machine() -> dict[str, Any]:
    ram = ram_gib()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(ram, 1) if ram else None,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


# -- processes and ports ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Terminate a process we started (then kill it if it does not go)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


# -- databases ----------------------------------------------------------------------------------


def pg_admin_url() -> str:
    from fidelia.db import normalise_url

    return normalise_url(os.environ.get(PG_ENV) or DEFAULT_PG_URL)


def postgres_available() -> bool:
    return postgres_version() is not None


def create_pg_database(prefix: str = "fidelia_bench") -> str:
    from sqlalchemy import create_engine, make_url, text

    admin_url = pg_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    from sqlalchemy import create_engine, make_url, text

    name = make_url(url).database
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def database_url(backend: str, tmp_dir: Path) -> Iterator[str]:
    """A fresh, empty database for ``backend`` ("sqlite" or "postgresql"), dropped afterwards."""
    if backend == "sqlite":
        path = tmp_dir / f"fidelia-bench-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


# -- web pages through the app in process -------------------------------------------------------


def timed_ms(call: Callable[[], object], runs: int, warm: int = 3) -> list[float]:
    """``runs`` timings of ``call`` in milliseconds, after ``warm`` untimed calls (templates
    compiled, caches filled)."""
    for _ in range(warm):
        call()
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        values.append((time.perf_counter() - started) * 1000)
    return values


def backoffice_client(app: Any, email: str, password: str) -> Any:
    """A Starlette test client on ``app`` signed in to the back-office as ``email``."""
    import re

    from fastapi.testclient import TestClient

    client = TestClient(app)
    token = re.search(r'name="login_token" value="([^"]+)"', client.get("/admin/login").text)
    assert token is not None, "no sign-in form"
    response = client.post(
        "/admin/login",
        data={"email": email, "password": password, "login_token": token[1]},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def page_figures(client: Any, pages: dict[str, str], runs: int, note: str) -> list[Figure]:
    """The server time of each page (label -> path) through ``client``, in ms, each against
    the floor of ``/healthz`` through the same client, measured in the same run."""
    floor = stats(timed_ms(lambda: client.get("/healthz"), runs))
    out = []
    for label, path in pages.items():
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 200, (path, response.status_code)
        log(f"timing {label}")
        measured = stats(timed_ms(functools.partial(client.get, path), runs))
        out.append(
            figure(
                label,
                measured,
                unit="ms",
                base=baseline("/healthz through the same client", floor, unit="ms", kind="floor"),
                higher_is_better=False,
                note=note,
            )
        )
    return out
