"""HTTP intake: single purchase events, ``POST /api/v1/events``, 16 concurrent clients on loopback.

Configurations, each against a server in its own process (uvicorn on 127.0.0.1, a free port):

- ceiling: a trivial FastAPI endpoint that parses the same JSON (``EventIn``) and writes nothing
  (``bench/ceiling_app.py``);
- Fidelia on SQLite (a file in a temporary directory);
- Fidelia on PostgreSQL with 1, 2 and 4 API worker processes (``fidelia serve --workers N``), each
  on its own fresh database created from ``FIDELIA_BENCH_DATABASE_URL`` and dropped afterwards.

Each database has one programme, one integration API key and 1,000 members enrolled with a card;
every event has a unique id and order id and goes to one of those members. The load generator is
``wrk`` with a Lua script when it is installed, else an async httpx client (16 tasks) in a separate
process. A short warm-up precedes each measured run. Requests/s are counted per second of the run
(median, min-max over those seconds); p50 and p99 latency cover the whole run.

    python bench/bench_intake_http.py [--duration 30] [--quick] [--loadgen auto|wrk|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    Figure,
    Stats,
    baseline,
    database_url,
    emit,
    figure,
    free_port,
    log,
    percentile,
    postgres_available,
    quick_mode,
    stats,
    stop_process,
)

NAME = "intake_http"
PATH = "/api/v1/events"
CARD = "BENCH{:05d}"
OCCURRED_AT = "2024-05-17T11:42:00+00:00"


def event_body(event_id: str, card: str) -> dict[str, Any]:
    """A purchase of two lines, as a till would send it."""
    return {
        "id": event_id,
        "type": "purchase",
        "occurred_at": OCCURRED_AT,
        "member": {"card": card},
        "channel": "store",
        "store": "S042",
        "properties": {
            "order_id": event_id,
            "lines": [
                {
                    "sku": "TSHIRT-ORG-M",
                    "name": "Organic cotton T-shirt",
                    "category": "apparel",
                    "brand": "Earth Care",
                    "quantity": 2,
                    "unit_price": "19.90",
                },
                {
                    "sku": "BOTTLE-STEEL",
                    "name": "Steel bottle",
                    "category": "home",
                    "brand": "Earth Care",
                    "quantity": 1,
                    "unit_price": "24.50",
                    "discount": "2.00",
                },
            ],
            "total": "62.30",
            "payment_means": ["card"],
        },
    }


# -- the database under test -------------------------------------------------------------------


def prepare_database(url: str, members: int, rules: bool = False) -> str:
    """Schema, one programme, ``members`` members with a card; returns an integration API key.

    With ``rules``, the demo programme document (16 earning rules, tiers, badges, challenges)
    is live, so every event goes through the engine and the ledger."""
    from fidelia.auth import service as apikeys
    from fidelia.auth.schemas import Scope
    from fidelia.db import Database
    from fidelia.members import service as members_service
    from fidelia.members.schemas import MemberCreate
    from fidelia.migrations import upgrade
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    database = Database.from_url(url)
    try:
        upgrade(database.engine)
        with database.transaction() as session:
            # the key's write limit (default 1,000/s, burst 2,000) raised out of the way: the
            # figure is the intake's, and SQLite without rules goes past 1,000/s
            limits = {"write": {"per_second": 100_000, "burst": 1_000_000}}
            data = ProgrammeCreate.model_validate(
                {"slug": "bench", "name": "Bench", "currency": "EUR",
                 "settings": {"api": {"rate_limits": limits}}}
            )  # fmt: skip
            programme = programmes.create(session, data=data)
            _, secret = apikeys.create(
                session, programme=programme, name="bench", scope=Scope.integration
            )
            if rules:
                from fidelia.programmes import documents
                from fidelia.rules.demo import programme_document

                documents.apply(
                    session, programme=programme, raw=programme_document(), actor="bench"
                )
            for n in range(members):
                members_service.insert_member(
                    session, programme=programme, data=MemberCreate(card=CARD.format(n))
                )
    finally:
        database.dispose()
    return secret


# -- servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    command: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until it answers; on failure, stop it (several uvicorn
        workers importing the app can take a minute on a loaded 2-core machine)."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label}: server exited\n{self.tail()}")
            try:
                url = f"http://127.0.0.1:{self.port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label}: server not ready after {timeout:.0f} s\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def server_env(database: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["FIDELIA_LOG_LEVEL"] = "warning"
    if database is not None:
        env["FIDELIA_DATABASE_URL"] = database
    return env


def fidelia_server(label: str, url: str, workers: int, tmp: Path) -> Server:
    port = free_port()
    fidelia = Path(sys.executable).with_name("fidelia")
    command = [str(fidelia)] if fidelia.exists() else [sys.executable, "-m", "fidelia.cli.main"]
    command += [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-embedded-worker",
    ]
    return Server(label, command, server_env(url), port, tmp / f"server-{port}.log")


def ceiling_server(tmp: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.ceiling_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return Server("ceiling", command, server_env(), port, tmp / f"server-{port}.log")


# -- load generators ----------------------------------------------------------------------------


@dataclass
class Load:
    """What one measured run produced."""

    per_second: list[float]
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    seconds: float
    generator: str
    error_detail: dict[str, Any] = field(default_factory=dict)


WRK_SCRIPT = """
-- Generated by bench/bench_intake_http.py: unique event ids, members spread over the pool.
token = "@TOKEN@"
members = @MEMBERS@
tid = 0
counter = 0
buckets = {}
bad = 0
threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "@AUTH@"
end

function request()
  counter = counter + 1
  local id = token .. "-" .. tid .. "-" .. counter
  local card = string.format("BENCH%05d", (counter * 7919 + tid * 104729) % members)
  local body = string.format(@TEMPLATE@, id, card, id)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  local s = os.time()
  buckets[s] = (buckets[s] or 0) + 1
  if status ~= 201 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local agg = {}
  local nbad = 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("buckets")) do agg[k] = (agg[k] or 0) + v end
    nbad = nbad + t:get("bad")
  end
  local keys = {}
  for k, _ in pairs(agg) do table.insert(keys, k) end
  table.sort(keys)
  local counts = {}
  for _, k in ipairs(keys) do table.insert(counts, tostring(agg[k])) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%f,"p99_us":%f,"bad_status":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"per_second":[%s]}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), nbad,
    e.connect, e.read, e.write, e.timeout, table.concat(counts, ",")))
end
"""


def wrk_template() -> str:
    """The event body as a Lua string.format template (id, card, order id)."""
    body = json.dumps(event_body("@ID@", "@CARD@"), separators=(",", ":"))
    body = body.replace("%", "%%")
    first = body.index("@ID@")
    body = body[:first] + "%s" + body[first + 4 :]
    body = body.replace("@CARD@", "%s").replace("@ID@", "%s")
    return json.dumps(body)  # a double-quoted string with escapes Lua reads the same way


def full_seconds(counts: list[float]) -> list[float]:
    """Drop the first and last (partial) seconds when there are enough."""
    return counts[1:-1] if len(counts) > 3 else counts


def run_wrk(
    port: int, key: str, *, duration: float, concurrency: int, members: int, tmp: Path
) -> Load:
    token = uuid.uuid4().hex[:10]
    script = tmp / f"intake-{token}.lua"
    script.write_text(
        WRK_SCRIPT.replace("@TOKEN@", token)
        .replace("@MEMBERS@", str(members))
        .replace("@AUTH@", f"Bearer {key}")
        .replace("@TEMPLATE@", wrk_template())
    )
    threads = max(1, min(concurrency, os.cpu_count() or 1))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = data["bad_status"] + sum(data[k] for k in ("connect", "read", "write", "timeout"))
    return Load(
        per_second=full_seconds([float(c) for c in data["per_second"]]),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=errors,
        seconds=data["duration_us"] / 1e6,
        generator="wrk",
        error_detail={k: data[k] for k in ("bad_status", "connect", "read", "write", "timeout")},
    )


async def httpx_load(
    port: int, key: str, duration: float, concurrency: int, members: int
) -> dict[str, Any]:
    """The fallback generator (runs in its own process): ``concurrency`` tasks posting in a loop."""
    import httpx

    token = uuid.uuid4().hex[:10]
    url = f"http://127.0.0.1:{port}{PATH}"
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    completions: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker(tid: int) -> None:
            nonlocal errors
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                event_id = f"{token}-{tid}-{n}"
                card = CARD.format((n * 7919 + tid * 104729) % members)
                sent = time.perf_counter()
                try:
                    response = await client.post(
                        url, json=event_body(event_id, card), headers=headers
                    )
                    ok = response.status_code == 201
                except httpx.HTTPError:
                    ok = False
                done = time.perf_counter()
                latencies.append(done - sent)
                completions.append(done - start)
                if not ok:
                    errors += 1

        await asyncio.gather(*(worker(t) for t in range(concurrency)))
        elapsed = time.perf_counter() - start
    buckets = [0.0] * (int(elapsed) + 1)
    for at in completions:
        buckets[int(at)] += 1
    complete = buckets[: int(elapsed)] or buckets
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": percentile(latencies, 50) * 1000 if latencies else 0.0,
        "p99_ms": percentile(latencies, 99) * 1000 if latencies else 0.0,
        "errors": errors,
        "per_second": complete,
    }


def run_httpx(port: int, key: str, *, duration: float, concurrency: int, members: int) -> Load:
    spec = json.dumps(
        {
            "port": port,
            "key": key,
            "duration": duration,
            "concurrency": concurrency,
            "members": members,
        }
    )
    command = [sys.executable, str(Path(__file__).resolve()), "--loadgen-child", spec]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, env=server_env()
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"httpx load generator failed:\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(
        per_second=full_seconds(data["per_second"]),
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        requests=data["requests"],
        errors=data["errors"],
        seconds=data["seconds"],
        generator="httpx",
    )


# -- one configuration --------------------------------------------------------------------------


@dataclass
class Options:
    duration: float
    warmup: float
    concurrency: int
    members: int
    generator: str
    tmp: Path


def load(server: Server, key: str, options: Options, duration: float) -> Load:
    if options.generator == "wrk":
        return run_wrk(
            server.port,
            key,
            duration=duration,
            concurrency=options.concurrency,
            members=options.members,
            tmp=options.tmp,
        )
    return run_httpx(
        server.port,
        key,
        duration=duration,
        concurrency=options.concurrency,
        members=options.members,
    )


def analyse(url: str) -> None:
    """PostgreSQL's statistics as a database in service has them. The tables were empty when
    the database was prepared and autovacuum looks at them once a minute: within a run of
    seconds the planner still believed the events of the programme were a handful, and looked
    up the group's event ids and orders by scanning all of them (0.8-0.9 ms a lookup and
    growing with the run, 489 against 821 events/s in the same hour)."""
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def measure(server: Server, key: str, options: Options, url: str | None = None) -> Load:
    server.start()
    try:
        if options.warmup > 0:
            load(server, key, options, options.warmup)
        if url is not None:
            analyse(url)
        result = load(server, key, options, options.duration)
    finally:
        server.stop()
    rate = result.requests / result.seconds if result.seconds else 0.0
    log(
        f"{server.label}: {result.requests} requests in {result.seconds:.1f} s ({rate:.0f}/s), "
        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, errors {result.errors}"
    )
    if result.errors > result.requests * 0.01:
        raise RuntimeError(
            f"{server.label}: {result.errors} failed requests of {result.requests} "
            f"{result.error_detail}\n{server.tail()}"
        )
    return result


def measure_fidelia(backend: str, workers: int, options: Options, rules: bool = False) -> Load:
    label = f"fidelia-{backend}-{workers}w{'-rules' if rules else ''}"
    with database_url(backend, options.tmp) as url:
        log(f"{label}: preparing the database ({options.members} members)")
        key = prepare_database(url, options.members, rules)
        return measure(fidelia_server(label, url, workers, options.tmp), key, options, url)


# -- figures ------------------------------------------------------------------------------------


def rate_stats(result: Load) -> Stats:
    return stats(result.per_second)


def latency_figures(
    label: str, result: Load, ceiling: Load, note: str
) -> tuple[Figure, Figure, Figure]:
    rps_base = baseline("trivial FastAPI endpoint", rate_stats(ceiling), unit="req/s")
    p50_base = baseline("trivial endpoint p50", ceiling.p50_ms, unit="ms", kind="floor")
    p99_base = baseline("trivial endpoint p99", ceiling.p99_ms, unit="ms", kind="floor")
    return (
        figure(f"single events over HTTP, {label}", rate_stats(result), unit="req/s",
               base=rps_base, note=note),
        figure(f"p50 latency, {label}", result.p50_ms, unit="ms", base=p50_base,
               higher_is_better=False),
        figure(f"p99 latency, {label}", result.p99_ms, unit="ms", base=p99_base,
               higher_is_better=False),
    )  # fmt: skip


def with_rules(label: str, result: Load, intake_only: Load, note: str) -> Figure:
    """The full path (engine, ledger, tiers, badges) against intake alone, same run."""
    base = baseline("intake only", rate_stats(intake_only), unit="req/s", kind="reference")
    return figure(
        f"purchase events over HTTP with the demo programme's rules, {label}",
        rate_stats(result),
        unit="req/s",
        base=base,
        note=f"{note}; p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=None, help="seconds per configuration")
    parser.add_argument("--quick", action="store_true", help="5 s per configuration")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--workers", default="1,2,4", help="API processes for the scaling figure")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--loadgen-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.loadgen_child:
        spec = json.loads(args.loadgen_child)
        print(json.dumps(asyncio.run(httpx_load(**spec))))
        return 0

    quick = quick_mode(args.quick)
    duration = args.duration or (5.0 if quick else 30.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    generator = args.loadgen
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "httpx"
    if generator == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --loadgen httpx")
    cores = os.cpu_count() or 1
    note = (
        f"{generator}, {args.concurrency} clients, {duration:.0f} s; median and min-max of "
        f"per-second rates; the load generator shares the {cores} cores with the server"
    )
    skipped: list[dict[str, str]] = []
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="fidelia-bench-http-") as tmp:
        options = Options(duration, warmup, args.concurrency, args.members, generator, Path(tmp))
        log(f"ceiling: trivial FastAPI endpoint ({generator}, {duration:.0f} s)")
        ceiling = measure(ceiling_server(options.tmp), "none", options)
        figures.append(
            figure("trivial FastAPI endpoint (ceiling)", rate_stats(ceiling), unit="req/s",
                   note=f"parses EventIn, writes nothing; p50 {ceiling.p50_ms:.1f} ms, "
                   f"p99 {ceiling.p99_ms:.1f} ms")
        )  # fmt: skip
        sqlite = measure_fidelia("sqlite", 1, options)
        figures.extend(latency_figures("SQLite", sqlite, ceiling, note))
        figures.append(
            with_rules("SQLite", measure_fidelia("sqlite", 1, options, rules=True), sqlite, note)
        )
        if args.no_postgres or not postgres_available():
            skipped.append({"figure": "PostgreSQL intake", "reason": "PostgreSQL not reachable"})
        else:
            scaling: dict[int, Load] = {}
            for workers in sorted({int(w) for w in args.workers.split(",")} | {1}):
                scaling[workers] = measure_fidelia("postgresql", workers, options)
            figures.extend(latency_figures("PostgreSQL", scaling[1], ceiling, note))
            ruled = measure_fidelia("postgresql", 1, options, rules=True)
            figures.append(with_rules("PostgreSQL", ruled, scaling[1], note))
            one = baseline("1 API worker", rate_stats(scaling[1]), unit="req/s", kind="reference")
            for workers, result in sorted(scaling.items()):
                if workers == 1:
                    continue
                figures.append(
                    figure(
                        f"purchase events/s, PostgreSQL, {workers} API workers",
                        rate_stats(result),
                        unit="events/s",
                        base=one,
                        note=f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms; "
                        f"{cores} cores shared by the workers, PostgreSQL and {generator}",
                    )
                )
    emit(NAME, figures, skipped=skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
