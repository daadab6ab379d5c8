"""The back-office pages: server time of the dashboard, the member 360° view, a members
search, the in-store view, the programme pages, rewards and operations, on the demo data set
(SQLite), signed in as the demo owner.

Requests go through the whole app in process (Starlette's test client: routing, session and
role checks, the queries, the Jinja2 rendering), so each figure is the server's time for one
page; the floor is `/healthz` through the same client. The member shown is the demo's most
active one. The target of issue 12 is under 200 ms (median).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import baseline, emit, figure, log, quick_mode, stats

NAME = "backoffice"


def timed(call: Callable[[], object], runs: int) -> list[float]:
    for _ in range(3):  # warm: templates compiled, programme cached
        call()
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        values.append((time.perf_counter() - started) * 1000)
    return values


def main() -> int:
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from fidelia.api.app import create_app
    from fidelia.db import Database
    from fidelia.demo import setup
    from fidelia.migrations import upgrade
    from fidelia.models import Event, MemberIdentity
    from fidelia.users import service as users

    members = 100 if quick_mode() else 300
    runs = 10 if quick_mode() else 30
    with tempfile.TemporaryDirectory(prefix="fidelia-bench-bo-") as tmp:
        database = Database.from_url(f"sqlite:///{Path(tmp) / 'bo.db'}")
        upgrade(database.engine)
        log(f"building the demo ({members} members, 12 months)")
        report = setup.build(database, members=members, months=12)
        with database.transaction() as session:
            user = users.create_user(session, email="bench@example.com", password="bench password")
            users.grant(session, user=user, programme=report.programme, role=users.Role.owner)
            member_id = session.scalar(
                select(Event.member_id)
                .group_by(Event.member_id)
                .order_by(func.count().desc())
                .limit(1)
            )
            email = session.scalar(
                select(MemberIdentity.value).where(
                    MemberIdentity.member_id == member_id, MemberIdentity.kind == "email"
                )
            )
            events = session.scalar(select(func.count()).where(Event.member_id == member_id))
        client = TestClient(create_app(database))
        page = client.get("/admin/login").text
        token = re.search(r'name="login_token" value="([^"]+)"', page)
        assert token is not None
        client.post(
            "/admin/login",
            data={"email": user.email, "password": "bench password", "login_token": token[1]},
        )
        base = f"/admin/p/{report.programme.slug}"
        pages = {
            "dashboard (12 months)": f"{base}/",
            f"member 360° ({events} events)": f"{base}/members/{member_id}",
            "members search by email": f"{base}/members?q={email or 'x'}",
            "in store: the member found by email": f"{base}/store?q={email or 'x'}",
            "programme: the document as tables": f"{base}/programme",
            "programme editor": f"{base}/programme/edit",
            "rewards and vouchers": f"{base}/rewards",
            "operations": f"{base}/operations",
        }
        floor = stats(timed(lambda: client.get("/healthz"), runs))
        results = []
        for label, path in pages.items():
            assert client.get(path).status_code == 200, path
            log(f"timing {label}")
            results.append(
                figure(
                    label,
                    stats(timed(lambda path=path: client.get(path), runs)),
                    unit="ms",
                    base=baseline(
                        "/healthz through the same client", floor, unit="ms", kind="floor"
                    ),
                    higher_is_better=False,
                    note=f"demo data, {members} members, SQLite, {runs} requests; target < 200 ms",
                )
            )
        database.dispose()
    emit(NAME, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
