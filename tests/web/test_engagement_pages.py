"""The referrals and leaderboards page (issue 14): the programme's referral figures and each
board's top 10 of the running period, under the names the members chose or masked."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fidelia.db import Database
from fidelia.engagement import leaderboards
from fidelia.intake import service as intake
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.programmes import documents
from fidelia.users.service import Role
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import make_member, make_programme
from tests.web.conftest import Browser


def test_the_page_shows_referral_figures_and_the_top_of_each_board(
    signed_in: Callable[..., Browser], database: Database
) -> None:
    programme = make_programme(database)
    document = {
        "rules": [{"id": "base", "name": "1 point per euro", "event_type": "purchase",
                   "award": {"kind": "spend", "rate": 1}}],
        "referral": {"at_enrolment": {"points": 50}},
        "leaderboards": [{"code": "monthly", "name": "Points this month", "period": "month",
                          "metric": {"kind": "points"}}],
    }  # fmt: skip
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=document, actor="test")
        live = session.get_one(Programme, programme.id)
    member = make_member(database, live, first_name="Zoé", last_name="Martin")
    with database.transaction() as session:
        leaderboards.set_profile(
            session, programme=live, member_id=member.id, opted_in=True, display_name=None
        )
        payload = purchase(
            {"id": str(member.id)}, order_id=f"o-{uuid.uuid4().hex[:6]}",
            lines=[line("x", 1, "42.00")], occurred_at=utcnow(),
        )  # fmt: skip
        (outcome,) = intake.ingest_payloads(session, programme=live, payloads=[payload])
        assert outcome.status == "accepted", outcome

    page = signed_in(live, Role.analyst).get(f"/admin/p/{live.slug}/engagement")

    assert page.status_code == 200, page.text
    assert 'data-field="invited">0<' in page.text
    assert 'data-board="monthly"' in page.text
    assert "Z*** M." in page.text
    assert f"/members/{member.id}" in page.text
