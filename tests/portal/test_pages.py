"""The member's pages against a real database: home (balances, tier progress), history with
the rules' labels, the catalogue, redeeming and donating (once per confirmation, nothing
written on refusal), vouchers and card codes, preferences, data export, closing the account;
and a member never reaching another member's data."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.models import (
    Account,
    ConsentChange,
    Member,
    MemberIdentity,
    Programme,
    Redemption,
    Voucher,
    Wallet,
)
from fidelia.models.portal import PortalSession
from tests.fixtures.factories import Api
from tests.portal.conftest import Phone, apply, buy, document, enrol, signed_in
from tests.users.mailbox import Inbox

NONCE = re.compile(r'name="nonce" value="([^"]+)"')


def points(database: Database, member_id: str, wallet: str = "points") -> int:
    with database.transaction(readonly=True) as session:
        value = session.scalar(
            select(Account.available)
            .join(Wallet, Wallet.id == Account.wallet_id)
            .where(Account.member_id == uuid.UUID(member_id), Wallet.code == wallet)
        )
    return value or 0


def redemptions(database: Database, member_id: str) -> int:
    with database.transaction(readonly=True) as session:
        return (
            session.scalar(select(func.count()).where(Redemption.member_id == uuid.UUID(member_id)))
            or 0
        )


def test_home_shows_balances_with_their_value_and_tier_progress(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp, first_name="Ana")
    buy(api, member_id, "250.00")

    home = phone.get("/")

    assert home.status_code == 200
    text = home.text
    assert "Hello Ana" in text
    assert re.search(r'data-wallet="points">\s*<h2>Points</h2>\s*<p class="big">400</p>', text)
    assert "worth €4.00" in text  # 400 points at 0.01
    assert "Your level: <strong>Member</strong>" in text
    assert "To reach Silver:" in text
    assert "50 status points" in text  # 300 needed, 250 earned
    assert '<progress max="100" value="83"' in text


def test_home_shows_badges_and_challenges_with_their_progress(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp, lang="fr")
    assert "Premier achat" not in phone.get("/").text
    buy(api, member_id, "20.00")

    text = phone.get("/").text

    assert "Premier achat" in text
    assert "Trois visites" in text
    assert '<progress max="100" value="33" aria-label="Trois visites">' in text
    assert "1 / 3" in text


def test_home_in_french_uses_the_level_labels_and_french_money(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, _, _ = signed_in(portal_app, club, api, smtp, lang="fr")

    text = phone.get("/").text

    assert (
        "Votre niveau : <strong>Membre</strong>" in text
        or "Votre niveau: <strong>Membre</strong>" in text
    )
    assert "soit 1,50\u00a0€" in text
    assert "Pour atteindre Argent" in text


def test_history_says_what_each_event_earned_and_why_in_the_members_language(
    portal_app: FastAPI,
    database: Database,
    programme: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    club = apply(database, programme, document(rule_labels={"base": {"fr": "1 point par euro"}}))
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp, lang="fr")
    buy(api, member_id, "30.00")

    text = phone.get("/history").text

    assert "Welcome" in text  # no French label: the rule's name
    assert "1 point par euro" in text
    assert "achat" in text
    assert "+30" in text
    assert "+150" in text


def _confirm(phone: Phone, code: str) -> str:
    page = phone.get(f"/rewards/{code}")
    assert page.status_code == 200, page.text
    found = NONCE.search(page.text)
    assert found is not None, "no confirmation form"
    return found.group(1)


def test_redeeming_twice_with_one_confirmation_charges_once_and_shows_the_voucher_codes(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)
    buy(api, member_id, "100.00")  # 250 points
    nonce = _confirm(phone, "voucher-10")

    first = phone.post("/rewards/voucher-10/redeem", {"nonce": nonce})
    second = phone.post("/rewards/voucher-10/redeem", {"nonce": nonce})  # a double click

    assert first.status_code == second.status_code == 303
    assert first.headers["location"].endswith("/vouchers?done=voucher")
    assert points(database, member_id) == 50
    assert redemptions(database, member_id) == 1
    wallet = phone.get("/vouchers?done=voucher").text
    with database.transaction(readonly=True) as session:
        code = session.scalar(select(Voucher.code).where(Voucher.member_id == uuid.UUID(member_id)))
    assert code is not None
    assert code in wallet
    assert 'class="qr" src="data:image/svg+xml' in wallet
    assert 'class="barcode" src="data:image/svg+xml;base64,' in wallet


def test_without_enough_points_redeeming_is_refused_in_french_and_writes_nothing(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp, lang="fr")
    page = phone.get("/rewards/voucher-10")
    assert "assez de points" in page.text
    assert NONCE.search(page.text) is None  # no confirm button

    forced = phone.post("/rewards/voucher-10/redeem", {"nonce": "forced-nonce-1"})

    assert forced.status_code == 409
    assert "pas assez de points" in forced.text
    assert points(database, member_id) == 150
    assert redemptions(database, member_id) == 0


def test_an_out_of_stock_reward_is_refused_and_writes_nothing(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)
    assert "This reward is out of stock." in phone.get("/rewards").text

    response = phone.post("/rewards/bag/redeem", {"nonce": "forced-nonce-2"})

    assert response.status_code == 409
    assert "This reward is out of stock." in response.text
    assert points(database, member_id) == 150
    assert redemptions(database, member_id) == 0


def test_a_donation_spends_the_points_and_shows_in_the_history(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)
    nonce = _confirm(phone, "trees")

    response = phone.post("/rewards/trees/redeem", {"nonce": nonce})

    assert response.status_code == 303
    assert points(database, member_id) == 100
    history = phone.get("/history").text
    assert "Plant a tree" in history
    assert "Spent" in history


def test_redeeming_needs_the_sessions_csrf_token(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)

    response = phone.post("/rewards/trees/redeem", {"nonce": "forged-nonce-3", "csrf_token": "x"})

    assert response.status_code == 403
    assert points(database, member_id) == 150


def test_consents_change_with_their_history_and_the_data_export_is_the_members_own(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    other = enrol(api)
    phone, member_id, email = signed_in(portal_app, club, api, smtp)
    phone.get("/preferences")

    saved = phone.post("/preferences/consents", {"consents": ["sms", "postal"]})

    assert saved.status_code == 303
    with database.transaction(readonly=True) as session:
        changes = session.execute(
            select(ConsentChange.channel, ConsentChange.granted, ConsentChange.source).where(
                ConsentChange.member_id == uuid.UUID(member_id)
            )
        ).all()
    assert sorted(changes) == [("postal", True, "portal"), ("sms", True, "portal")]
    export = phone.get(f"/preferences/my-data.json?member_id={other}")
    assert export.status_code == 200
    data = json.loads(export.text)
    assert data["member"]["id"] == member_id
    assert other not in export.text
    assert email in export.text


def test_closing_the_account_closes_it_and_ends_the_session(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)
    phone.get("/preferences")
    refused = phone.post("/preferences/close", {})
    assert refused.status_code == 422

    closed = phone.post("/preferences/close", {"confirm": "yes"})

    assert closed.status_code == 303
    with database.transaction(readonly=True) as session:
        member = session.get(Member, uuid.UUID(member_id))
        assert member is not None
        assert member.status == "closed"
        live = session.scalar(
            select(func.count()).where(
                PortalSession.member_id == member.id, PortalSession.ended_at.is_(None)
            )
        )
    assert live == 0
    assert phone.get("/").status_code == 303


def test_adding_a_card_shows_it_as_codes_and_another_members_card_is_refused(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    enrol(api, card="4000000000001")
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)
    phone.get("/card")

    taken = phone.post("/card", {"card": "4000000000001"})
    added = phone.post("/card", {"card": "4000000000099"})

    assert taken.status_code == 422
    assert "already linked" in taken.text
    assert added.status_code == 303
    card = phone.get("/card").text
    assert "4000000000099" in card
    assert 'class="qr"' in card
    with database.transaction(readonly=True) as session:
        cards = session.scalars(
            select(MemberIdentity.value).where(
                MemberIdentity.member_id == uuid.UUID(member_id), MemberIdentity.kind == "card"
            )
        )
        assert list(cards) == ["4000000000099"]


def test_a_member_cannot_read_another_members_vouchers_or_inbox_by_id(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    victim, victim_id, _ = signed_in(portal_app, club, api, smtp)
    buy(api, victim_id, "100.00")
    victim.post("/rewards/voucher-10/redeem", {"nonce": _confirm(victim, "voucher-10")})
    with database.transaction(readonly=True) as session:
        code = session.scalar(select(Voucher.code).where(Voucher.member_id == uuid.UUID(victim_id)))
    assert code is not None
    thief, _, _ = signed_in(portal_app, club, api, smtp)

    assert code not in thief.get(f"/vouchers?member_id={victim_id}").text
    assert victim_id not in thief.get(f"/history?member_id={victim_id}").text
    assert thief.get(f"/members/{victim_id}/history").status_code == 404
    assert thief.post(f"/inbox/{uuid.uuid4()}/read").status_code == 404
