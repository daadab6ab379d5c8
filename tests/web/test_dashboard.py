"""The dashboard never waits on the analytics refresh: it shows the aggregates as they stand
with their watermark, asks the hourly job to run when they were never built, and an owner's
"Refresh now" brings the sales figures up to date."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from fidelia.analytics import aggregates
from fidelia.analytics.jobs import REFRESH_JOB, run_refresh
from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations
from fidelia.models import Event, Job, Member, Programme
from fidelia.users.service import Role
from tests.web.conftest import Browser


def figures(page: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page))


def buy(database: Database, programme: Programme, member: Member, totals: list[str]) -> None:
    now = utcnow()
    with database.transaction() as session:
        for i, total in enumerate(totals):
            session.add(
                Event(
                    id=uuid.uuid4(),
                    programme_id=programme.id,
                    idempotency_key=f"dash-{member.id}-{i}",
                    fingerprint="x",
                    type="purchase",
                    occurred_at=now - timedelta(days=i + 1),
                    received_at=now,  # arrives now, whenever it happened
                    member_id=member.id,
                    properties={"total": total},
                )
            )


def watermark(database: Database, programme: Programme) -> object:
    with database.transaction(readonly=True) as session:
        return aggregates.watermark(session, programme=programme)


def refresh_jobs(database: Database, programme: Programme) -> list[Job]:
    with database.transaction(readonly=True) as session:
        return list(
            session.scalars(
                select(Job).where(Job.programme_id == programme.id, Job.kind == REFRESH_JOB)
            )
        )


def test_the_page_does_not_refresh_but_asks_the_job_and_shows_the_watermark(
    signed_in: Callable[..., Browser],
    database: Database,
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    buy(database, programme, member_factory(), ["12.50", "7.50"])
    b = signed_in(programme, Role.analyst)
    page = b.get(f"/admin/p/{programme.slug}/").text
    assert "have not been computed yet" in page
    assert figures(page)["Member sales"] == "€0.00"
    assert watermark(database, programme) is None  # the request did not build the aggregates
    (job,) = refresh_jobs(database, programme)  # ... it asked the worker, once
    assert job.due_at <= utcnow()
    b.get(f"/admin/p/{programme.slug}/")
    assert len(refresh_jobs(database, programme)) == 1
    assert "Refresh now" not in page  # an analyst reads; only an owner may refresh
    with database.transaction() as session:  # the worker runs the job
        found = session.get(Job, job.id)
        assert found is not None
        run_refresh(session, found)
    page = b.get(f"/admin/p/{programme.slug}/").text
    assert figures(page)["Member sales"] == "€20.00"
    assert "Figures as of" in page
    assert watermark(database, programme) is not None


def test_an_owner_refreshes_now_and_comes_back_to_the_same_period(
    signed_in: Callable[..., Browser],
    database: Database,
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    member = member_factory()
    buy(database, programme, member, ["10.00"])
    owner = signed_in(programme, Role.owner)
    base = f"/admin/p/{programme.slug}"
    start = (utcnow() - timedelta(days=60)).date().isoformat()
    page = owner.get(f"{base}/", params={"start": start}).text
    assert "Refresh now" in page
    assert f"/dashboard/refresh?start={start}" in page
    done = owner.post(f"{base}/dashboard/refresh?start={start}", {})
    assert done.status_code == 303
    assert done.headers["location"] == f"{base}/?start={start}"
    page = owner.get(done.headers["location"]).text
    assert figures(page)["Member sales"] == "€10.00"
    assert "Figures as of" in page
    # later purchases wait for the next refresh: the page reads what is there
    buy(database, programme, member_factory(), ["5.00"])
    assert figures(owner.get(f"{base}/").text)["Member sales"] == "€10.00"
    owner.post(f"{base}/dashboard/refresh", {})
    assert figures(owner.get(f"{base}/").text)["Member sales"] == "€15.00"


def test_the_ledger_figures_are_reused_for_a_while_and_a_refresh_recomputes_them(
    signed_in: Callable[..., Browser],
    database: Database,
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    member = member_factory()
    owner = signed_in(programme, Role.owner)
    base = f"/admin/p/{programme.slug}"
    page = owner.get(f"{base}/").text
    assert figures(page)["Issued (Points)"] == "0"
    assert "Computed at" in page
    with database.transaction() as session:
        operations.award(
            session, programme=programme, member_id=member.id, wallet="points", amount=700,
            idempotency_key=f"snap-{member.id}",
        )  # fmt: skip
    assert figures(owner.get(f"{base}/").text)["Issued (Points)"] == "0"  # the snapshot
    owner.post(f"{base}/dashboard/refresh", {})
    assert figures(owner.get(f"{base}/").text)["Issued (Points)"] == "700"


def test_only_an_owner_with_the_form_token_may_refresh(
    signed_in: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    base = f"/admin/p/{programme.slug}"
    analyst = signed_in(programme, Role.analyst)
    analyst.get(f"{base}/")
    assert analyst.post(f"{base}/dashboard/refresh", {}).status_code == 403
    owner = signed_in(programme, Role.owner)
    owner.get(f"{base}/")
    assert owner.post(f"{base}/dashboard/refresh", {}, csrf=False).status_code == 403
    assert watermark(database, programme) is None
