"""The in-store page (issue 12): staff find a member by card, phone or email and see at once
their balances with their value, tier and what is left to the next, perks, vouchers ready to
use and the rewards they can take; they enrol a new member in a few fields through the intake,
so the welcome rules fire (the demo's welcome coupon), once per form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.intake import service as intake
from fidelia.models import Member, Programme
from fidelia.models.audit import AuditEntry
from fidelia.users.service import Role
from tests.fixtures.events import enrolment, line, purchase
from tests.web.conftest import Browser
from tests.web.test_pages import available


def store(programme: Programme, tail: str = "") -> str:
    return f"/admin/p/{programme.slug}/store{tail}"


def members_of(database: Database, programme: Programme) -> int:
    with database.transaction(readonly=True) as s:
        return s.scalar(select(func.count()).where(Member.programme_id == programme.id)) or 0


def test_a_member_found_by_card_shows_what_the_till_needs(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    card = f"C{uuid.uuid4().hex[:10]}"
    day = datetime.now(UTC) - timedelta(days=1)  # inside the tiers' 12-month window
    with database.transaction() as session:
        outcomes = intake.ingest_payloads(
            session,
            programme=demo,
            payloads=[
                enrolment({"card": card}, profile={"first_name": "Ada"}, occurred_at=day),
                purchase(
                    {"card": card},
                    lines=[line("kettle", 1, "250.00", category="home")],
                    occurred_at=day,
                ),
            ],
        )
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    b = signed_in(demo, Role.analyst)
    page = b.get(store(demo), params={"q": card})
    assert page.status_code == 200
    till = page.text[page.text.index('id="till"') :]
    with database.transaction(readonly=True) as s:
        ada = s.get(Member, outcomes[0].member_id)
    assert ada is not None
    points = available(database, ada)
    assert points >= 250  # 1 € = 1 point, plus the demo's first-time bonuses
    assert re.search(rf'data-wallet="points">{points:,}<', till), till
    assert f"worth €{points / 100:.2f}" in till  # a point is worth 0.01 €
    assert "Silver: spend 50.00 to go" in till  # Silver needs 300 € spent
    assert re.search(r'id="vouchers"><li><code>WELCOME-', till)  # the welcome coupon
    assert "10 € voucher" in till  # 200 points: they can take it now
    assert "1 € = 1 point" in till  # the Bronze perk
    assert 'id="enrol"' not in page.text  # an analyst reads only
    assert b.get(store(demo), params={"q": "nobody@nowhere.example"}).status_code == 200


def test_enrolling_at_the_till_runs_the_welcome_rules_once(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    b = signed_in(demo, Role.support)
    form = b.get(store(demo))
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    email = f"till-{uuid.uuid4().hex[:8]}@example.org"
    fields = {
        "email": email,
        "first_name": "Lin",
        "store": "lyon-1",
        "consent_email": "yes",
        "nonce": nonce.group(1),
    }
    before = members_of(database, demo)
    done = b.post(store(demo, "/enrol"), fields)
    assert done.status_code == 303, re.findall(r"class=\"error\"[^<]*<[^<]*", done.text)
    assert "enrolled=true" in done.headers["location"]
    again = b.post(store(demo, "/enrol"), fields)  # sent twice
    assert again.status_code == 303
    assert members_of(database, demo) == before + 1
    page = b.get(done.headers["location"])
    assert "Welcome! The member is enrolled." in page.text
    assert "WELCOME-" in page.text
    with database.transaction(readonly=True) as s:
        member = s.scalars(
            select(Member).where(Member.programme_id == demo.id, Member.first_name == "Lin")
        ).one()
        assert (member.enrolment_channel, member.enrolment_store) == ("store", "lyon-1")
        entries = s.scalar(
            select(func.count()).where(
                AuditEntry.programme_id == demo.id, AuditEntry.action == "member.enrol"
            )
        )
    assert entries == 1

    taken = b.post(store(demo, "/enrol"), {**fields, "nonce": "another"})
    assert taken.status_code == 409
    assert 'class="error" role="alert"' in taken.text
    empty = b.post(store(demo, "/enrol"), {"first_name": "Nobody", "nonce": "x"})
    assert empty.status_code == 422
    assert "give an email, a phone number or a card number" in empty.text
    assert members_of(database, demo) == before + 1


def test_read_only_roles_cannot_enrol(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    b = signed_in(demo, Role.analyst)
    b.get(store(demo))
    refused = b.post(store(demo, "/enrol"), {"email": "ro@example.org", "nonce": "n"})
    assert refused.status_code == 403
    assert members_of(database, demo) == 0
