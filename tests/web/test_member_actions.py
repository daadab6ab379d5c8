"""The member 360° page's actions (issue 12): redeem a reward on the member's behalf, cancel
a redemption, issue a voucher, assign a tier until a date, suspend / reactivate / close — each
with a reason, through the services the API uses, in the audit log; a refusal says why on the
page and writes nothing; a read-only role is refused; a form sent twice acts once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.ledger import operations
from fidelia.models import Member, MemberTier, Programme, Redemption, Voucher
from fidelia.models.audit import AuditEntry
from fidelia.users.service import Role
from tests.fixtures.factories import make_member, make_programme
from tests.web.conftest import Browser
from tests.web.test_pages import available


@pytest.fixture
def rich(database: Database, demo: Programme) -> Member:
    """A member of the demo programme holding 500 points."""
    member = make_member(database, demo)
    with database.transaction() as session:
        operations.award(
            session,
            programme=demo,
            member_id=member.id,
            wallet="points",
            amount=500,
            idempotency_key=f"t-{member.id}",
        )
    return member


def url(programme: Programme, member: Member, tail: str = "") -> str:
    return f"/admin/p/{programme.slug}/members/{member.id}{tail}"


def nonce_of(b: Browser, programme: Programme, member: Member) -> str:
    page = b.get(url(programme, member))
    found = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def audited(database: Database, programme: Programme, action: str) -> list[AuditEntry]:
    with database.transaction(readonly=True) as s:
        return list(
            s.scalars(
                select(AuditEntry).where(
                    AuditEntry.programme_id == programme.id, AuditEntry.action == action
                )
            )
        )


def redemptions_of(database: Database, member: Member) -> list[Redemption]:
    with database.transaction(readonly=True) as s:
        return list(s.scalars(select(Redemption).where(Redemption.member_id == member.id)))


def test_redeeming_on_behalf_spends_once_and_is_audited(
    signed_in: Callable[..., Browser], database: Database, demo: Programme, rich: Member
) -> None:
    b = signed_in(demo, Role.support)
    nonce = nonce_of(b, demo, rich)
    form = {"reward": "voucher-10-eur", "reason": "asked at the till", "nonce": nonce}
    first = b.post(url(demo, rich, "/redeem"), form)
    assert first.status_code == 303
    assert first.headers["location"].endswith("?done=redeemed")
    again = b.post(url(demo, rich, "/redeem"), form)  # a double click
    assert again.status_code == 303
    assert available(database, rich) == 300
    (redemption,) = redemptions_of(database, rich)
    assert redemption.status == "issued"
    with database.transaction(readonly=True) as s:
        held = s.scalar(select(func.count()).where(Voucher.member_id == rich.id))
    assert held == 1
    (entry,) = audited(database, demo, "reward.redeem")
    assert (entry.target_id, entry.reason) == (str(rich.id), "asked at the till")
    page = b.get(first.headers["location"])
    assert "Done, and recorded in the audit log." in page.text


def test_a_redemption_without_enough_points_says_why_and_spends_nothing(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    poor = make_member(database, demo)
    b = signed_in(demo, Role.marketer)
    form = {"reward": "voucher-10-eur", "reason": "gesture", "nonce": nonce_of(b, demo, poor)}
    answer = b.post(url(demo, poor, "/redeem"), form)
    assert answer.status_code == 409
    assert 'class="error" role="alert"' in answer.text
    assert redemptions_of(database, poor) == []
    assert audited(database, demo, "reward.redeem") == []
    no_reason = b.post(url(demo, poor, "/redeem"), {**form, "reason": " "})
    assert no_reason.status_code == 422
    assert "say why" in no_reason.text


def test_cancelling_a_redemption_refunds_it_once(
    signed_in: Callable[..., Browser], database: Database, demo: Programme, rich: Member
) -> None:
    b = signed_in(demo, Role.owner)
    form = {"reward": "tote-bag", "reason": "for the member", "nonce": nonce_of(b, demo, rich)}
    assert b.post(url(demo, rich, "/redeem"), form).status_code == 303
    assert available(database, rich) == 200
    (redemption,) = redemptions_of(database, rich)
    page = b.get(url(demo, rich))
    assert f"/redemptions/{redemption.id}/cancel" in page.text
    cancel = url(demo, rich, f"/redemptions/{redemption.id}/cancel")
    assert b.post(cancel, {"reason": "changed their mind"}).status_code == 303
    assert available(database, rich) == 500
    (done,) = redemptions_of(database, rich)
    assert done.status == "cancelled"
    twice = b.post(cancel, {"reason": "again"})
    assert twice.status_code == 409
    assert available(database, rich) == 500
    assert len(audited(database, demo, "reward.cancel")) == 1
    other = make_member(database, demo)
    foreign = b.post(url(demo, other, f"/redemptions/{redemption.id}/cancel"), {"reason": "x"})
    assert foreign.status_code == 422


def test_issuing_a_voucher_and_assigning_a_tier(
    signed_in: Callable[..., Browser], database: Database, demo: Programme, rich: Member
) -> None:
    b = signed_in(demo, Role.marketer)
    form = {"pool": "bon-10", "reason": "late delivery", "nonce": nonce_of(b, demo, rich)}
    assert b.post(url(demo, rich, "/vouchers"), form).status_code == 303
    assert b.post(url(demo, rich, "/vouchers"), form).status_code == 303  # sent twice
    with database.transaction(readonly=True) as s:
        vouchers = list(s.scalars(select(Voucher).where(Voucher.member_id == rich.id)))
    assert [(v.source, v.status) for v in vouchers] == [("operator", "active")]
    unknown = b.post(url(demo, rich, "/vouchers"), {**form, "pool": "nope", "nonce": "n2"})
    assert unknown.status_code == 404

    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    tier = {"tier": "gold", "until": until, "reason": "VIP event"}
    assert b.post(url(demo, rich, "/tier"), tier).status_code == 303
    with database.transaction(readonly=True) as s:
        row = s.get(MemberTier, rich.id)
        assert row is not None
        assert (row.tier, row.source) == ("gold", "manual")
        assert row.manual_until is not None
    for bad, field in (({"until": "next week"}, "until"), ({"tier": "diamond"}, "tier")):
        refused = b.post(url(demo, rich, "/tier"), {**tier, **bad})
        assert refused.status_code == 422, field
    assert len(audited(database, demo, "tier.assign")) == 1
    assert len(audited(database, demo, "voucher.issue")) == 1


def test_suspend_reactivate_close(
    signed_in: Callable[..., Browser], database: Database, demo: Programme, rich: Member
) -> None:
    b = signed_in(demo, Role.support)
    status = url(demo, rich, "/status")

    def current() -> str:
        with database.transaction(readonly=True) as s:
            found = s.get(Member, rich.id)
            assert found is not None
            return found.status

    assert b.post(status, {"to": "suspend", "reason": ""}).status_code == 422
    assert current() == "active"
    assert b.post(status, {"to": "suspend", "reason": "fraud check"}).status_code == 303
    assert current() == "suspended"
    assert b.post(status, {"to": "reactivate", "reason": "cleared"}).status_code == 303
    assert b.post(status, {"to": "close", "reason": "asked by phone"}).status_code == 303
    assert current() == "closed"
    refused = b.post(status, {"to": "reactivate", "reason": "oops"})
    assert refused.status_code == 409
    assert current() == "closed"
    entries = audited(database, demo, "member.status")
    assert sorted((e.before or {}).get("status", "") for e in entries) == [
        "active",
        "active",
        "suspended",
    ]


def test_read_only_roles_and_other_programmes_are_refused(
    signed_in: Callable[..., Browser], database: Database, demo: Programme, rich: Member
) -> None:
    analyst = signed_in(demo, Role.analyst)
    page = analyst.get(url(demo, rich))
    assert 'id="actions"' not in page.text
    for tail, form in (
        ("/redeem", {"reward": "tote-bag", "reason": "x", "nonce": uuid.uuid4().hex}),
        ("/vouchers", {"pool": "bon-10", "reason": "x", "nonce": uuid.uuid4().hex}),
        ("/tier", {"tier": "gold", "reason": "x"}),
        ("/status", {"to": "suspend", "reason": "x"}),
    ):
        assert analyst.post(url(demo, rich, tail), form).status_code == 403, tail
    other = signed_in(make_programme(database), Role.owner)
    assert other.post(url(demo, rich, "/status"), {"to": "close", "reason": "x"}).status_code in (
        403,
        404,
    )
    assert available(database, rich) == 500
    assert redemptions_of(database, rich) == []


def test_merging_a_duplicate_found_by_email_moves_its_points_here(
    signed_in: Callable[..., Browser], database: Database, demo: Programme, rich: Member
) -> None:
    email = f"dup-{uuid.uuid4().hex[:8]}@example.org"
    duplicate = make_member(database, demo, email=email)
    with database.transaction() as session:
        operations.award(
            session,
            programme=demo,
            member_id=duplicate.id,
            wallet="points",
            amount=120,
            idempotency_key=f"t-{duplicate.id}",
        )
    b = signed_in(demo, Role.support)
    page = b.get(url(demo, rich))
    assert 'action="' + url(demo, rich, "/merge") + '"' in page.text
    unknown = b.post(url(demo, rich, "/merge"), {"duplicate": "nobody@x.example", "reason": "r"})
    assert unknown.status_code == 422
    assert "no other member has this identity" in unknown.text
    done = b.post(url(demo, rich, "/merge"), {"duplicate": email.upper(), "reason": "same person"})
    assert done.status_code == 303
    assert available(database, rich) == 620
    with database.transaction(readonly=True) as s:
        gone = s.get(Member, duplicate.id)
        assert gone is not None
        assert gone.status == "merged"
    (entry,) = audited(database, demo, "member.merge")
    assert entry.reason == "same person"
    again = b.post(url(demo, rich, "/merge"), {"duplicate": str(duplicate.id), "reason": "again"})
    assert again.status_code == 409  # merged already: nothing moves twice
    assert available(database, rich) == 620
