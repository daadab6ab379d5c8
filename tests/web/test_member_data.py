"""The member 360° page shows the data-driven domains (issue 12 over issues 10 and 11): the
member's live segments, computed traits, scenario journeys and messages, and never another
member's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from fidelia.db import Database
from fidelia.intake import service as intake
from fidelia.kit.clock import utcnow
from fidelia.models import Member, Programme, SegmentMember
from fidelia.models.messaging import Message
from fidelia.models.scenarios import ScenarioJourney
from fidelia.users.service import Role
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import make_member
from tests.web.conftest import Browser


def _journey_and_message(
    database: Database, programme: Programme, member: Member, scenario: str, subject: str
) -> None:
    now = utcnow()
    with database.transaction() as session:
        session.add(
            ScenarioJourney(
                programme_id=programme.id, scenario=scenario, member_id=member.id,
                entry_key=f"{scenario}:{member.id}", version=programme.live_version,
                holdout=False, status="active", step="remind", due_at=now + timedelta(days=3),
                waiting=None, entered_at=now - timedelta(days=1),
            )
        )  # fmt: skip
        session.add(
            Message(
                programme_id=programme.id, member_id=member.id, source=f"scenario:{scenario}",
                template="refill", kind="marketing", channels=["email"], channel="email",
                recipient="someone@example.com", subject=subject, status="sent",
                due_at=now, sent_at=now,
            )
        )  # fmt: skip


def test_the_360_page_shows_segments_traits_journeys_and_messages(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    member = make_member(database, demo, first_name="Zoé", last_name="Martin")
    other = make_member(database, demo, first_name="Alan", last_name="Turing")
    with database.transaction() as session:
        payload = purchase(
            {"id": str(member.id)}, order_id=f"o-{uuid.uuid4().hex[:6]}",
            lines=[line("x", 1, "42.00")], occurred_at=utcnow() - timedelta(days=2),
        )  # fmt: skip
        (outcome,) = intake.ingest_payloads(session, programme=demo, payloads=[payload])
        assert outcome.status == "accepted", outcome
        session.add(
            SegmentMember(
                programme_id=demo.id, segment="big-spenders", member_id=member.id,
                since=utcnow() - timedelta(days=1),
            )
        )  # fmt: skip
        session.add(
            SegmentMember(
                programme_id=demo.id, segment="lapsed-others", member_id=other.id,
                since=utcnow(),
            )
        )  # fmt: skip
    _journey_and_message(database, demo, member, "refill-reminder", "Time to refill, Zoé")
    _journey_and_message(database, demo, other, "winback-others", "Alan's own message")

    page = signed_in(demo, Role.analyst).get(f"/admin/p/{demo.slug}/members/{member.id}")

    assert page.status_code == 200, page.text
    text = page.text
    assert "big-spenders" in text
    assert "lapsed-others" not in text
    assert "<code>purchases_count</code></td><td>1<" in text  # the intake computed it
    assert "<code>spend_total</code>" in text
    assert "refill-reminder" in text
    assert "<td>remind</td>" in text  # the journey's step
    assert "Time to refill, Zoé" in text
    assert "winback-others" not in text
    assert "own message" not in text


def test_a_member_without_data_reads_as_such(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    member = make_member(database, demo, first_name="Ada", last_name="Lovelace")
    page = signed_in(demo, Role.analyst).get(f"/admin/p/{demo.slug}/members/{member.id}")
    assert page.status_code == 200, page.text
    for empty in ("In no segment.", "No trait computed yet.", "No journey yet.", "No message yet."):
        assert empty in page.text
