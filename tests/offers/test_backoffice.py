"""The back-office page of offers and plans: conversion and plans shown, an offer given to
members by a marketer (audited), bad ids refused on the page with nothing given, a read-only
role refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fidelia.db import Database
from fidelia.models import Programme
from fidelia.models.audit import AuditEntry
from fidelia.models.offers import OfferTarget
from fidelia.programmes import documents
from fidelia.users.service import Role
from tests.fixtures.factories import count_rows, make_member, make_programme
from tests.web.conftest import Browser

DOC = {
    "offers": [{"code": "gift", "name": "100 points on us", "kind": "points", "amount": 100}],
    "plans": [
        {"code": "club", "name": "The Club", "period": "year", "price": "49", "currency": "EUR"}
    ],
}


@pytest.fixture
def shop(database: Database) -> Programme:
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=DOC, actor="test")
        live = session.get(Programme, programme.id)
        assert live is not None
    return live


def test_a_marketer_gives_an_offer_from_the_page(
    signed_in: Callable[..., Browser], database: Database, shop: Programme
) -> None:
    ann, bob = make_member(database, shop), make_member(database, shop)
    b = signed_in(shop, Role.marketer)
    page = b.get(f"/admin/p/{shop.slug}/offers")
    assert page.status_code == 200
    assert "100 points on us" in page.text
    assert "The Club" in page.text
    given = b.post(
        f"/admin/p/{shop.slug}/offers/give", {"offer": "gift", "members": f"{ann.id}\n{bob.id}"}
    )
    assert given.status_code == 303, given.text
    assert given.headers["location"].endswith("done=given-2-already-0")
    assert count_rows(database, OfferTarget, OfferTarget.programme_id == shop.id) == 2
    assert (
        count_rows(
            database,
            AuditEntry,
            AuditEntry.programme_id == shop.id,
            AuditEntry.action == "offer.give",
        )
        == 1
    )
    bad = b.post(f"/admin/p/{shop.slug}/offers/give", {"offer": "gift", "members": "not-an-id"})
    assert bad.status_code == 422
    assert "is not a member id" in bad.text
    assert count_rows(database, OfferTarget, OfferTarget.programme_id == shop.id) == 2


def test_a_read_only_role_may_not_give(
    signed_in: Callable[..., Browser], database: Database, shop: Programme
) -> None:
    member = make_member(database, shop)
    b = signed_in(shop, Role.analyst)
    assert b.get(f"/admin/p/{shop.slug}/offers").status_code == 200
    refused = b.post(
        f"/admin/p/{shop.slug}/offers/give", {"offer": "gift", "members": str(member.id)}
    )
    assert refused.status_code == 403
    assert count_rows(database, OfferTarget, OfferTarget.programme_id == shop.id) == 0
