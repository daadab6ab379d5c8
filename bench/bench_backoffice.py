"""The back-office pages: server time of the dashboard, the member 360° view, the members
search, the in-store view and the other pages, signed in as an owner.

Two data sets:

1. the demo (``fidelia.demo``: 300 members, 12 months; 100 with ``--quick``) on SQLite, every
   page;
2. a programme of ``--members`` members (default 100,000; 10,000 with ``--quick``) on SQLite
   and PostgreSQL: a small demo for the document, wallets, tiers and rewards, then the members
   added in bulk by :mod:`bench.population` (three identities each, purchases, earn postings
   and lots, tiers) and one heavy member (3,000 events, 3,000 transactions). The analytics
   aggregates are refreshed once before timing (what the hourly job keeps them), as the
   dashboard never refreshes them itself. Timed: the dashboard, the heavy member's 360° page,
   the members search by email, card, phone and name, the in-store lookup by card.

Requests go through the whole app in process (Starlette's test client: routing, session and
role checks, the queries, the Jinja2 rendering), so each figure is the server's time for one
page; the floor is ``/healthz`` through the same client. The target of issue 12 is under
200 ms (median).

    python bench/bench_backoffice.py [--members 100000] [--runs 15] [--quick] [--only sqlite]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from bench.common import (
    Figure,
    backoffice_client,
    database_url,
    emit,
    figure,
    log,
    page_figures,
    postgres_available,
    quick_mode,
    stats,
    timed_ms,
)

if TYPE_CHECKING:
    from fidelia.db import Database
    from fidelia.models import Programme

NAME = "backoffice"
PASSWORD = "bench password"


def owner(database: Database, programme: Programme) -> str:
    from fidelia.users import service as users

    with database.transaction() as session:
        user = users.create_user(session, email="bench@example.com", password=PASSWORD)
        users.grant(session, user=user, programme=programme, role=users.Role.owner)
        return str(user.email)


def demo(tmp: Path, members: int, runs: int) -> list[Figure]:
    from sqlalchemy import func, select

    from fidelia.api.app import create_app
    from fidelia.db import Database
    from fidelia.demo import setup
    from fidelia.migrations import upgrade
    from fidelia.models import Event, MemberIdentity

    database = Database.from_url(f"sqlite:///{tmp / 'demo.db'}")
    try:
        upgrade(database.engine)
        log(f"building the demo ({members} members, 12 months)")
        report = setup.build(database, members=members, months=12)
        email = owner(database, report.programme)
        with database.transaction() as session:
            member_id = session.scalar(
                select(Event.member_id)
                .group_by(Event.member_id)
                .order_by(func.count().desc())
                .limit(1)
            )
            found = session.scalar(
                select(MemberIdentity.value).where(
                    MemberIdentity.member_id == member_id, MemberIdentity.kind == "email"
                )
            )
            events = session.scalar(select(func.count()).where(Event.member_id == member_id))
        from fidelia.analytics import aggregates

        aggregates.fresh(database, programme=report.programme)  # what the hourly job keeps
        client = backoffice_client(create_app(database), email, PASSWORD)
        base = f"/admin/p/{report.programme.slug}"
        pages = {
            "dashboard (12 months)": f"{base}/",
            f"member 360° ({events} events)": f"{base}/members/{member_id}",
            "members search by email": f"{base}/members?q={found or 'x'}",
            "in store: the member found by email": f"{base}/store?q={found or 'x'}",
            "programme: the document as tables": f"{base}/programme",
            "programme editor": f"{base}/programme/edit",
            "rewards and vouchers": f"{base}/rewards",
            "operations": f"{base}/operations",
        }
        note = f"demo data, {members} members, SQLite, {runs} requests; target < 200 ms"
        return page_figures(client, pages, runs, note)
    finally:
        database.dispose()


def large(backend: str, tmp: Path, members: int, runs: int) -> list[Figure]:
    import time

    from sqlalchemy import update

    from bench import population
    from fidelia.analytics import aggregates
    from fidelia.api.app import create_app
    from fidelia.db import Database
    from fidelia.demo import setup
    from fidelia.kit.clock import utcnow
    from fidelia.migrations import upgrade
    from fidelia.models import AnalyticsState
    from fidelia.web import dashboard

    heavy_events = heavy_transactions = 300 if quick_mode() else 3000
    with database_url(backend, tmp) as url:
        database = Database.from_url(url)
        try:
            upgrade(database.engine)
            started = time.perf_counter()
            report = setup.build(database, members=20, months=2)
            now = utcnow()
            made = population.add_members(database, report.programme, members, now=now)
            population.make_heavy(
                database, report.programme, made.first_id, now=now,
                events=heavy_events, transactions=heavy_transactions,
            )  # fmt: skip
            log(
                f"{backend}: {made.members:,} members, {made.events:,} events, "
                f"{made.transactions:,} transactions in {time.perf_counter() - started:.0f}s"
            )
            started = time.perf_counter()
            with database.transaction() as session:  # the demo built them; the population was
                # written behind their watermarks (received and posted in the past): build anew
                session.execute(update(AnalyticsState).values(refreshed_to=None, ledger_to=None))
            aggregates.fresh(database, programme=report.programme)
            log(f"{backend}: first build of the aggregates in {time.perf_counter() - started:.1f}s")
            email = owner(database, report.programme)
            client = backoffice_client(create_app(database), email, PASSWORD)
            base = f"/admin/p/{report.programme.slug}"
            i = members // 2
            label = "PostgreSQL" if backend == "postgresql" else "SQLite"
            pages = {
                f"dashboard (12 months), {members:,} members, {label}": f"{base}/",
                f"member 360° (a heavy member: {heavy_events:,} events, "
                f"{heavy_transactions:,} transactions), {label}": f"{base}/members/{made.first_id}",
                f"members search by email, {label}": f"{base}/members?q={population.email(i)}",
                f"members search by card, {label}": f"{base}/members?q={population.card(i)}",
                f"members search by phone, {label}": f"{base}/members?q={population.phone(i)}",
                f"members search by name, {label}": f"{base}/members?q=Last{i:06d}",
                f"in store: the member found by card, {label}": f"{base}/store?q="
                f"{population.card(i)}",
            }
            note = f"{members:,} members, {runs} requests; target < 200 ms"
            found = page_figures(client, pages, runs, note)
            log("timing the dashboard without its snapshot")
            pid = report.programme.id

            def cold() -> object:
                dashboard._snapshots.drop(pid)  # what the first view of a period pays
                return client.get(f"{base}/")

            found.append(
                figure(
                    f"dashboard, figures computed (no snapshot: first view of a period, "
                    f"every 5 minutes or after a refresh), {members:,} members, {label}",
                    stats(timed_ms(cold, max(3, runs // 3), warm=1)),
                    unit="ms",
                    higher_is_better=False,
                    note="the page itself never refreshes the analytics aggregates",
                )
            )
            return found
        finally:
            database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("demo", "sqlite", "postgresql"), default=None)
    args = parser.parse_args(argv)
    quick = quick_mode(args.quick)
    members = args.members or (10_000 if quick else 100_000)
    runs = args.runs or (10 if quick else 15)
    results: list[Figure] = []
    skipped = []
    with tempfile.TemporaryDirectory(prefix="fidelia-bench-bo-") as tmp:
        if args.only in (None, "demo"):
            results += demo(Path(tmp), 100 if quick else 300, 10 if quick else 30)
        for backend in ("sqlite", "postgresql"):
            if args.only not in (None, backend):
                continue
            if backend == "postgresql" and not postgres_available():
                skipped.append({"figure": "PostgreSQL pages", "reason": "no PostgreSQL"})
                continue
            results += large(backend, Path(tmp), members, runs)
    emit(NAME, results, skipped=skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
