"""The dashboard's KPIs and charts in a real browser (Playwright driving /usr/bin/chromium, as
tests/web/test_browser.py; skipped without it unless FIDELIA_REQUIRE_BROWSER=1), the members per
tier by month among them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from fidelia.analytics import aggregates
from fidelia.db import Database
from fidelia.intake.service import ingest_payloads
from fidelia.kit.clock import utcnow
from fidelia.models import Member, Programme, TierChange
from fidelia.programmes import documents
from fidelia.users.service import Role
from tests.fixtures.events import enrolment, line, purchase
from tests.fixtures.factories import make_programme
from tests.tiers.conftest import document
from tests.web.conftest import PASSWORD, new_user
from tests.web.test_browser import chromium, server  # noqa: F401  (fixtures)


def _shop(database: Database) -> tuple[Programme, str]:
    programme = make_programme(database, name="Maison KPI", locale="en-GB")
    at = utcnow() - timedelta(days=3)
    bodies: list[dict[str, Any]] = []
    for i in range(3):
        who = {"email": f"k{i}@example.com"}
        bodies.append(enrolment(who, occurred_at=at, channel="store", store="s1"))
        bodies.append(purchase(who, order_id=f"m{i}", lines=[line("x", 1, "40.00")],
                               occurred_at=at + timedelta(hours=1)))  # fmt: skip
    anonymous = purchase({}, order_id="anon", lines=[line("x", 1, "10.00")], occurred_at=at)
    del anonymous["member"]
    bodies.append(anonymous)
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        outcomes = ingest_payloads(session, programme=found, payloads=bodies)
        assert all(o.status == "accepted" for o in outcomes), outcomes
    with database.transaction() as session:  # bronze < silver < gold < black
        found = session.get(Programme, programme.id)
        assert found is not None
        documents.apply(session, programme=found, raw=document(), actor="test", comment="")
    with database.transaction() as session:  # three members join tiers; one moves up to gold
        members = session.scalars(
            select(Member.id).where(Member.programme_id == programme.id).order_by(Member.id)
        ).all()
        changes = [(members[0], None, "silver"), (members[1], None, "silver"),
                   (members[2], None, "silver"), (members[2], "silver", "gold")]  # fmt: skip
        for i, (member, before, after) in enumerate(changes):
            session.add(
                TierChange(
                    programme_id=programme.id, member_id=member, from_tier=before, to_tier=after,
                    reason="metric", at=at + timedelta(hours=2 + i), event_id=None, metric={},
                )
            )  # fmt: skip
    with database.transaction() as session:  # as the refresh job does (a view never refreshes)
        found = session.get(Programme, programme.id)
        assert found is not None
        aggregates.refresh(session, programme=found)
    return programme, new_user(database, [(programme, Role.analyst)], locale="en")


def test_the_dashboard_shows_the_kpis_with_their_charts(
    server: tuple[str, Database],  # noqa: F811
    chromium: Any,  # noqa: F811
) -> None:
    base, database = server
    programme, email = _shop(database)
    page = chromium.new_context(locale="en-GB").new_page()
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/p/{programme.slug}/")
    figures = page.locator('dl[data-section="kpis"]').inner_text()
    assert "Buying members\n3" in figures
    assert "€120.00" in figures  # three member purchases of 40.00
    assert "€10.00" in figures  # the anonymous one
    sales = page.get_by_role("img", name="Sales by month")
    assert sales.locator("rect").count() >= 2
    activity = page.get_by_role("img", name="Enrolments and active members by month")
    assert "Enrolments" in (activity.locator("rect").first.locator("title").text_content() or "")
    tiers = page.get_by_role("img", name="Members per tier by month")
    titles = [t.text_content() or "" for t in tiers.locator("rect title").all()]
    rows = page.locator('[data-section="tiers-over-time"] tbody tr')
    assert any(t.startswith("silver") and t.endswith(": 2") for t in titles), titles
    assert any(t.startswith("gold") and t.endswith(": 1") for t in titles), titles
    page.locator('[data-section="tiers-over-time"] summary').click()
    cells = [r.locator("td").all_inner_texts() for r in rows.all()]
    assert cells[-1][:2] == ["1", "2"]  # gold, silver at the end of the current month
    assert sum(int(c[2]) for c in cells) == 1  # one upgrade in the period (3 days ago)
    assert sum(int(c[3]) for c in cells) == 0
