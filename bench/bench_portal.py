"""The member portal: server time of the home page (balances, expiring points, tier progress,
badges, challenges) and of history, rewards and vouchers, on the demo data set (SQLite),
signed in as the demo's most active member.

Requests go through the whole app in process (Starlette's test client: routing, the member
session, the queries, the Jinja2 rendering), so each figure is the server's time for one page;
the floor is `/healthz` through the same client. The target of issue 13 is a home page under
100 ms (median).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import emit, log, page_figures, quick_mode

NAME = "portal"


def main() -> int:
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from fidelia.api.app import create_app
    from fidelia.db import Database
    from fidelia.demo import setup
    from fidelia.kit.clock import utcnow
    from fidelia.migrations import upgrade
    from fidelia.models import Event
    from fidelia.portal import signin
    from fidelia.portal.access import SESSION_COOKIE

    members = 100 if quick_mode() else 300
    runs = 10 if quick_mode() else 30
    with tempfile.TemporaryDirectory(prefix="fidelia-bench-portal-") as tmp:
        database = Database.from_url(f"sqlite:///{Path(tmp) / 'portal.db'}")
        upgrade(database.engine)
        log(f"building the demo ({members} members, 12 months)")
        report = setup.build(database, members=members, months=12)
        programme = report.programme
        with database.transaction() as session:
            member_id, events = session.execute(
                select(Event.member_id, func.count())
                .where(Event.programme_id == programme.id)
                .group_by(Event.member_id)
                .order_by(func.count().desc())
                .limit(1)
            ).one()
            token = signin.open_session(
                session, programme=programme, member_id=member_id, ip="127.0.0.1", now=utcnow()
            )
        client = TestClient(create_app(database))
        client.cookies.set(SESSION_COOKIE, token)
        base = f"/portal/{programme.slug}"
        pages = {
            f"home (the most active member, {events} events)": f"{base}/",
            "history": f"{base}/history",
            "rewards catalogue": f"{base}/rewards",
            "vouchers wallet (QR and barcodes)": f"{base}/vouchers",
        }
        note = f"demo data, {members} members, SQLite, {runs} requests; target for home < 100 ms"
        results = page_figures(client, pages, runs, note)
        database.dispose()
    emit(NAME, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
