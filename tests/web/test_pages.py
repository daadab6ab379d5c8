"""The back-office pages against a real database: sign-in, sessions, language, members search
and 360° view, adjusting points (ledger and audit log), API keys, password reset by email."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import select

from fidelia.db import Database
from fidelia.ledger import operations
from fidelia.models import Account, LedgerTransaction, Member, Programme, Wallet
from fidelia.models.audit import AuditEntry
from fidelia.users.service import Role
from tests.users.mailbox import Inbox
from tests.web.conftest import PASSWORD, Browser, new_user


def available(database: Database, member: Member, wallet: str = "points") -> int:
    with database.transaction(readonly=True) as session:
        value = session.scalar(
            select(Account.available)
            .join(Wallet, Wallet.id == Account.wallet_id)
            .where(Account.member_id == member.id, Wallet.code == wallet)
        )
    return value or 0


def test_a_wrong_password_is_refused_with_a_message_and_no_session(
    browser: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    email = new_user(database, [(programme, Role.owner)])
    b = browser()
    response = b.sign_in(email, "not my password")
    assert response.status_code == 401
    assert "Wrong email or password" in response.text or "incorrect" in response.text
    assert "fidelia_admin=" not in response.headers.get("set-cookie", "")
    assert b.get(f"/admin/p/{programme.slug}/").status_code == 303


def test_the_sign_in_form_needs_its_token(
    browser: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    email = new_user(database, [(programme, Role.owner)])
    b = browser()
    b.get("/admin/login")
    response = b.post("/admin/login", {"email": email, "password": PASSWORD}, csrf=False)
    assert response.status_code == 403
    assert "fidelia_admin=" not in response.headers.get("set-cookie", "")


def test_repeated_failures_throttle_the_account_on_the_page(
    browser: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    email = new_user(database, [(programme, Role.owner)])
    b = browser()
    for _ in range(5):
        assert b.sign_in(email, "not my password").status_code == 401
    response = b.sign_in(email)
    assert response.status_code == 429
    assert "Too many failed attempts" in response.text or "Trop de tentatives" in response.text


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(
    browser: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    email = new_user(database, [(programme, Role.owner)])
    plain = browser().sign_in(email).headers["set-cookie"].lower()
    assert "httponly" in plain
    assert "samesite=lax" in plain
    assert "secure" not in plain
    tls = browser(https=True).sign_in(email).headers["set-cookie"].lower()
    assert "; secure" in tls


def test_sign_out_ends_the_session_for_good(
    signed_in: Callable[..., Browser], programme: Programme
) -> None:
    b = signed_in(programme)
    cookie = b.client.cookies.get("fidelia_admin")
    assert b.post("/admin/logout").status_code == 303
    assert b.get(f"/admin/p/{programme.slug}/").status_code == 303
    b.client.cookies.set("fidelia_admin", cookie or "", path="/admin")  # the old cookie again
    replay = b.client.get(f"/admin/p/{programme.slug}/")
    assert replay.status_code == 303


def test_the_language_follows_the_programme_then_the_users_choice(
    signed_in: Callable[..., Browser], programme: Programme
) -> None:
    b = signed_in(programme, locale=None)  # the programme is fr-FR
    page = b.get(f"/admin/p/{programme.slug}/members").text
    assert 'lang="fr"' in page
    assert "Membres" in page
    response = b.post("/admin/locale", {"locale": "en", "next": f"/admin/p/{programme.slug}/"})
    assert response.status_code == 303
    page = b.get(f"/admin/p/{programme.slug}/members").text
    assert 'lang="en"' in page
    assert "Card, email, phone, name or external id" in page


def test_members_are_found_by_any_identity_and_by_name(
    signed_in: Callable[..., Browser],
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    member = member_factory(
        email="Grace.Hopper@Example.com",
        card="CARD 7781",
        phone="06 12 34 56 78",
        external_ids=[{"namespace": "shopify", "value": "cust-991"}],
        first_name="Grace",
        last_name="Hopper",
    )
    other = member_factory(first_name="Alan", last_name="Turing")
    b = signed_in(programme, Role.analyst)
    for query in ("grace.hopper@example.com", "card7781", "+33612345678", "cust-991", "hopp"):
        page = b.get(f"/admin/p/{programme.slug}/members", params={"q": query}).text
        assert f"/members/{member.id}" in page, query
        assert f"/members/{other.id}" not in page, query


def test_the_member_page_shows_balance_lots_and_ledger_with_rule_and_version(
    signed_in: Callable[..., Browser],
    database: Database,
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    member = member_factory(first_name="Grace", last_name="Hopper")
    with database.transaction() as session:
        operations.award(
            session,
            programme=programme,
            member_id=member.id,
            wallet="points",
            amount=1234,
            idempotency_key=f"t-{member.id}",
            rule_id="welcome-bonus",
            rule_version=3,
        )
    page = signed_in(programme, Role.analyst).get(f"/admin/p/{programme.slug}/members/{member.id}")
    assert page.status_code == 200
    text = page.text
    assert re.search(r'data-wallet="points" data-field="available">1,234<', text)
    assert "welcome-bonus (v3)" in text
    assert "Lots and their expiry" in text


def test_adjusting_points_posts_once_through_the_ledger_and_is_audited(
    signed_in: Callable[..., Browser],
    database: Database,
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    member = member_factory()
    b = signed_in(programme, Role.support)
    path = f"/admin/p/{programme.slug}/members/{member.id}"
    b.get(path)
    form = {"wallet": "points", "amount": "250", "reason": "goodwill", "nonce": b.tokens["nonce"]}
    response = b.post(f"{path}/adjust", form)
    assert response.status_code == 303
    assert available(database, member) == 250
    assert b.post(f"{path}/adjust", form).status_code == 303  # the same form again
    assert available(database, member) == 250
    with database.transaction(readonly=True) as session:
        txn = session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.member_id == member.id)
        ).one()
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.target_id == str(member.id))
        ).one()
    assert (txn.kind, txn.reason, txn.actor) == ("adjust", "goodwill", f"user:{b.email}")
    assert entry.action == "points.adjust"
    assert entry.before == {"wallet": "points", "available": "0"}
    assert entry.after == {"wallet": "points", "available": "250", "transaction_id": str(txn.id)}
    audit_page = b.get(f"/admin/p/{programme.slug}/audit").text
    assert "goodwill" in audit_page
    assert b.email in audit_page


def test_an_invalid_adjustment_says_why_and_writes_nothing(
    signed_in: Callable[..., Browser],
    database: Database,
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    member = member_factory()
    b = signed_in(programme, Role.marketer)
    path = f"/admin/p/{programme.slug}/members/{member.id}/adjust"
    cases = [
        ({"amount": "ten", "reason": "x"}, "not a number"),
        ({"amount": "0", "reason": "x"}, "must not be zero"),
        ({"amount": "1.5", "reason": "x"}, "whole points"),
        ({"amount": "-5", "reason": "x"}, "available"),
        ({"amount": "5", "reason": " "}, "say why"),
    ]
    for fields, message in cases:
        response = b.post(path, {"wallet": "points", **fields})
        assert response.status_code in (409, 422), fields
        assert message in response.text.lower() or message in response.text, fields
    unknown = b.post(path, {"wallet": "nope", "amount": "5", "reason": "x"})
    assert unknown.status_code == 404
    assert available(database, member) == 0
    with database.transaction(readonly=True) as session:
        assert (
            session.scalars(select(AuditEntry).where(AuditEntry.target_id == str(member.id))).all()
            == []
        )


def test_an_api_key_is_shown_once_works_and_stops_working_when_revoked(
    signed_in: Callable[..., Browser], programme: Programme, api_client: object
) -> None:
    b = signed_in(programme, Role.owner)
    created = b.post(f"/admin/p/{programme.slug}/keys", {"name": "till 4", "scope": "read"})
    assert created.status_code == 201
    secret = re.search(r'<code id="new-key">([^<]+)</code>', created.text)
    assert secret is not None
    listing = b.get(f"/admin/p/{programme.slug}/keys").text
    assert "till 4" in listing
    assert secret.group(1) not in listing
    headers = {"Authorization": f"Bearer {secret.group(1)}"}
    assert b.client.get("/api/v1/programme", headers=headers).status_code == 200
    key_id = re.search(r"/keys/([0-9a-f-]{36})/revoke", listing)
    assert key_id is not None
    assert b.post(f"/admin/p/{programme.slug}/keys/{key_id.group(1)}/revoke").status_code == 303
    assert b.client.get("/api/v1/programme", headers=headers).status_code == 401
    audit = b.get(f"/admin/p/{programme.slug}/audit").text
    assert "API key created" in audit
    assert "API key revoked" in audit
    empty = b.post(f"/admin/p/{programme.slug}/keys", {"name": " ", "scope": "read"})
    assert empty.status_code == 422


def test_a_password_reset_goes_by_email_and_sets_a_new_password(
    browser: Callable[..., Browser], database: Database, programme: Programme, smtp: Inbox
) -> None:
    email = new_user(database, [(programme, Role.owner)])
    b = browser()
    b.get("/admin/reset")
    sent = b.post("/admin/reset", {"email": email, "login_token": b.tokens["login_token"]})
    assert sent.status_code == 200
    nobody = b.post(
        "/admin/reset", {"email": "nobody@example.com", "login_token": b.tokens["login_token"]}
    )
    assert nobody.text == sent.text.replace(b.tokens["login_token"], b.tokens["login_token"])
    (message,) = smtp.messages
    assert message["To"] == email
    link = re.search(r"http://\S+/admin/reset/(\S+)", message.get_payload())
    assert link is not None
    path = f"/admin/reset/{link.group(1)}"
    assert b.get(path).status_code == 200
    token = b.tokens["login_token"]
    short = b.post(path, {"password": "short", "password_again": "short", "login_token": token})
    assert short.status_code == 422
    new = "a much better passphrase"
    done = b.post(path, {"password": new, "password_again": new, "login_token": token})
    assert done.status_code == 303
    assert browser().sign_in(email, PASSWORD).status_code == 401
    assert browser().sign_in(email, new).status_code == 303
    assert b.get(path).status_code == 404


def test_the_dashboard_figures_come_from_the_ledger(
    signed_in: Callable[..., Browser],
    database: Database,
    programme: Programme,
    member_factory: Callable[..., Member],
) -> None:
    members = [member_factory() for _ in range(3)]
    with database.transaction() as session:
        for i, member in enumerate(members):
            operations.award(
                session,
                programme=programme,
                member_id=member.id,
                wallet="points",
                amount=1000 * (i + 1),
                idempotency_key=f"d-{member.id}",
            )
    b = signed_in(programme, Role.analyst)
    page = b.get(f"/admin/p/{programme.slug}/").text
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page))
    assert figures["Members"] == "3"
    assert figures["Issued (Points)"] == "6,000"
    assert figures["Liability"] == "€60.00"  # 6,000 points at 0.01
    assert "<svg" in page
    assert "<table>" in page
    assert Decimal("60.00") == Decimal(figures["Liability"].strip("€").replace(",", ""))


def test_bad_input_in_the_url_gets_a_page_that_says_why(
    signed_in: Callable[..., Browser], browser: Callable[..., Browser], programme: Programme
) -> None:
    b = signed_in(programme, Role.analyst)
    base = f"/admin/p/{programme.slug}"
    backwards = b.get(f"{base}/", params={"start": "2026-05-01", "end": "2026-01-01"})
    assert backwards.status_code == 422
    assert "the period starts after it ends" in backwards.text
    assert b.get(f"{base}/", params={"start": "yesterday"}).status_code == 422
    assert b.get(f"{base}/members/not-an-id").status_code == 422
    assert b.get(f"{base}/audit", params={"cursor": "junk"}).status_code == 422
    # after sign-in, only a path of the back-office is followed (no open redirect)
    other = browser()
    other.get("/admin/login")
    email = b.email
    form = {"email": email, "password": PASSWORD, "login_token": other.tokens["login_token"]}
    response = other.post("/admin/login", {**form, "next": "https://evil.example/"}, csrf=False)
    assert response.headers["location"] == "/admin/"
