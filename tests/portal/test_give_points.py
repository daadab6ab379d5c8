"""The portal's "give points" page (issue 16): only when the programme enables transfers for
the portal; a gift by email or card, once per form; refusals in the member's words."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Programme
from fidelia.models.transfers import PointTransfer
from tests.fixtures.factories import Api
from tests.portal.conftest import Phone, apply, buy, document, enrol, signed_in
from tests.portal.test_pages import points
from tests.users.mailbox import Inbox


def _nonce(phone: Phone) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', phone.get("/give").text)
    assert found is not None
    return found.group(1)


def test_giving_points_from_the_portal(
    portal_app: FastAPI,
    database: Database,
    programme: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    club = apply(database, programme, document())
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)
    assert "/give" not in phone.get("/").text  # off by default: no tab, no page
    assert phone.get("/give").status_code == 404

    transfers = {"enabled": True, "min_amount": 10, "max_per_transfer": 200}
    club = apply(database, programme, {**document(), "transfers": transfers})
    friend_email = f"f-{uuid.uuid4().hex[:10]}@example.com"
    friend = enrol(api, friend_email)
    buy(api, member_id, "100.00")
    before, friend_before = points(database, member_id), points(database, friend)
    page = phone.get("/give")
    assert page.status_code == 200
    assert '/give" aria-current="page"' in page.text  # the tab is there now

    nonce = _nonce(phone)
    first = phone.post("/give", {"nonce": nonce, "to": friend_email, "amount": "50"})
    again = phone.post("/give", {"nonce": nonce, "to": friend_email, "amount": "50"})
    assert first.status_code == again.status_code == 303
    assert first.headers["location"].endswith("/give?done=1")
    assert points(database, member_id) == before - 50
    assert points(database, friend) == friend_before + 50
    with database.transaction(readonly=True) as s:
        rows = s.scalars(
            select(PointTransfer).where(PointTransfer.sender_id == uuid.UUID(member_id))
        ).all()
        assert [(r.channel, r.amount) for r in rows] == [("portal", 50)]

    for to, amount, message in [
        (friend_email, "5", "below the smallest gift"),
        ("nobody-" + friend_email, "20", "We found no member"),
        (friend_email, "lots", "Check the amount"),
        (friend_email, "100000", "above the largest gift"),
    ]:
        refused = phone.post("/give", {"nonce": _nonce(phone), "to": to, "amount": amount})
        assert refused.status_code in (409, 422)
        assert message in refused.text
    assert points(database, member_id) == before - 50
