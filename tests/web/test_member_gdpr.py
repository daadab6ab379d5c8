"""The member 360° page's GDPR buttons (issue 16): owners download everything held about the
member and erase their personal data (ticked confirmation and a reason, audited); other roles
see neither and are refused."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Member, MemberErasure, Programme
from fidelia.users.service import Role
from tests.fixtures.factories import make_member
from tests.web.conftest import Browser
from tests.web.test_member_actions import audited, url


def test_owner_downloads_and_erases_with_confirmation(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    member = make_member(database, demo, first_name="Zoé", last_name="Martin")
    b = signed_in(demo, Role.owner)
    page = b.get(url(demo, member))
    assert "/personal-data" in page.text
    assert "/erase" in page.text
    download = b.get(url(demo, member, "/personal-data"))
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    assert json.loads(download.text)["member"]["first_name"] == "Zoé"
    exported = audited(database, demo, "member.personal_data_exported")
    assert [e.target_id for e in exported].count(str(member.id)) == 1

    # Without the box ticked: refused, nothing erased.
    refused = b.post(url(demo, member, "/erase"), {"reason": "asked by email"})
    assert refused.status_code == 422
    assert "tick the box" in refused.text
    with database.transaction(readonly=True) as s:
        assert s.scalar(select(MemberErasure).where(MemberErasure.member_id == member.id)) is None

    done = b.post(url(demo, member, "/erase"), {"reason": "asked by email", "confirm": "yes"})
    assert done.status_code == 303
    assert done.headers["location"].endswith("?done=erased")
    with database.transaction(readonly=True) as s:
        assert s.scalar(select(MemberErasure).where(MemberErasure.member_id == member.id))
        erased = s.get(Member, member.id)
        assert erased is not None
        assert erased.first_name != "Zoé"
    entries = [e for e in audited(database, demo, "member.erase") if e.target_id == str(member.id)]
    assert len(entries) == 1
    entries = [
        e
        for e in audited(database, demo, "member.erase_requested")
        if e.target_id == str(member.id)
    ]
    assert [e.reason for e in entries] == ["asked by email"]
    assert "Zoé" not in json.dumps([entries[0].before, entries[0].after])


def test_other_roles_neither_see_nor_may(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    member = make_member(database, demo, first_name="Léa")
    b = signed_in(demo, Role.support)
    assert "/personal-data" not in b.get(url(demo, member)).text
    assert b.get(url(demo, member, "/personal-data")).status_code == 403
    refused = b.post(url(demo, member, "/erase"), {"reason": "r", "confirm": "yes"})
    assert refused.status_code == 403
    with database.transaction(readonly=True) as s:
        assert s.scalar(select(MemberErasure).where(MemberErasure.member_id == member.id)) is None


def test_support_gives_points_on_a_members_behalf_under_the_policy(
    signed_in: Callable[..., Browser],
    database: Database,
    programme_factory: Callable[..., Programme],
) -> None:
    from fidelia.ledger import operations, wallets
    from fidelia.models.transfers import PointTransfer
    from fidelia.programmes import documents
    from tests.web.test_member_actions import nonce_of
    from tests.web.test_pages import available

    p = programme_factory()
    with database.transaction() as s:
        wallets.ensure_default_wallets(s, programme=p)
    giver, friend = make_member(database, p), make_member(database, p, card="GIFT-42")
    with database.transaction() as s:
        operations.award(
            s, programme=p, member_id=giver.id, wallet="points", amount=300, idempotency_key="g"
        )
    b = signed_in(p, Role.support)
    assert f"{url(p, giver)}/give" not in b.get(url(p, giver)).text  # transfers are off
    with database.transaction() as s:
        documents.apply(s, programme=p, raw={"transfers": {"enabled": True}}, actor="test")
    nonce = nonce_of(b, p, giver)
    form = {"to": "GIFT-42", "amount": "120", "reason": "asked at the desk", "nonce": nonce}
    first = b.post(url(p, giver, "/give"), form)
    again = b.post(url(p, giver, "/give"), form)  # a double click gives once
    assert first.status_code == again.status_code == 303
    assert first.headers["location"].endswith("?done=given")
    assert (available(database, giver), available(database, friend)) == (180, 120)
    with database.transaction(readonly=True) as s:
        [row] = s.scalars(select(PointTransfer).where(PointTransfer.sender_id == giver.id)).all()
        assert (row.channel, row.reason) == ("admin", "asked at the desk")
    [entry] = [e for e in audited(database, p, "points.transfer") if e.target_id == str(giver.id)]
    assert entry.reason == "asked at the desk"

    refused = b.post(
        url(p, giver, "/give"),
        {"to": "GIFT-42", "amount": "500", "reason": "r", "nonce": nonce_of(b, p, giver)},
    )
    assert refused.status_code == 409
    assert available(database, giver) == 180
