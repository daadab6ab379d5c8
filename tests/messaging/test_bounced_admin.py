"""Bounced addresses through the API: listed by address, paged, filtered by a part of the
address, admin scope only; clearing one lets messages go to it again and is audited; an
unknown address is a 404 that changes nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models.audit import AuditEntry
from fidelia.models.messaging import BouncedAddress
from tests.fixtures.factories import Api, count_rows
from tests.messaging.conftest import SmtpSink, apply, enrol, messaging_doc, send

PATH = "/messaging/bounced-addresses"


def _bounce(database: Database, api: Api, *addresses: str) -> None:
    with database.transaction() as session:
        for address in addresses:
            row = {"address": address, "reason": "5.1.1 user unknown", "bounced_at": utcnow()}
            session.add(BouncedAddress(programme_id=api.programme.id, **row))


def _all(api: Api, **params: Any) -> list[list[str]]:
    """Every page's addresses, following the cursor."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get(PATH, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["address"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_bounced_addresses_are_listed_by_pages_and_filtered(api: Api, database: Database) -> None:
    _bounce(database, api, "zoe@dead.example", "ana@dead.example", "bob@live.example",
            "Cat_1@Dead.example")  # fmt: skip
    assert _all(api, limit=3) == [
        ["Cat_1@Dead.example", "ana@dead.example", "bob@live.example"],
        ["zoe@dead.example"],
    ]
    assert _all(api, address="DEAD", limit=2) == [
        ["Cat_1@Dead.example", "ana@dead.example"],
        ["zoe@dead.example"],
    ]
    assert _all(api, address="t_1") == [["Cat_1@Dead.example"]]  # _ is no wildcard
    assert _all(api, address="%") == [[]]
    assert api.get(PATH, scope="read").status_code == 403
    bad = api.get(PATH, params={"cursor": "???"})
    assert bad.status_code == 422
    assert "cursor" in bad.text


def test_clearing_an_address_lets_messages_go_to_it_again_and_is_audited(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    _, port = smtp_sink
    apply(api, messaging_doc(port))
    address = "ana+club@dead.example"
    member = enrol(api, email=address, consents={"email": True})
    _bounce(database, api, address)
    refused = send(api, member, template="welcome")
    assert refused["status"] == "not_sent"
    assert api.delete(f"{PATH}/{quote(address)}", scope="integration").status_code == 403

    cleared = api.delete(f"{PATH}/{quote(address)}")
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["address"], cleared.json()["reason"]) == (address, "5.1.1 user unknown")
    assert (
        count_rows(database, BouncedAddress, BouncedAddress.programme_id == api.programme.id) == 0
    )
    with database.transaction(readonly=True) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.programme_id == api.programme.id, AuditEntry.target_id == address
            )
        ).all()
    assert actions == ["DELETE /messaging/bounced-addresses/{address}"]
    assert send(api, member, template="welcome")["status"] == "queued"

    again = api.delete(f"{PATH}/{quote(address)}")
    assert again.status_code == 404
    assert "not a bounced address" in again.text
