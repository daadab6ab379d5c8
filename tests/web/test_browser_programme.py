"""The back-office's programme, member-action, in-store, rewards and operations pages in a real
browser (the same uvicorn and chromium as test_browser): a YAML error shown at its line, then
fixed; a dry-run, a back-test and a publish; a reward redeemed on a member's behalf; the member
found at the till. Screenshots as test_browser's (admin-*.png)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.ledger import operations
from fidelia.models import Programme
from fidelia.programmes import documents
from fidelia.rules.demo import programme_document
from fidelia.users.service import Role
from tests.fixtures.factories import make_member, make_programme
from tests.web.conftest import PASSWORD, new_user
from tests.web.test_browser import chromium, server, shoot

__all__ = ["chromium", "server"]

pytestmark = pytest.mark.xdist_group("browser")


def test_a_programme_change_from_draft_to_publish(
    server: tuple[str, Database], chromium: Any
) -> None:
    base, database = server
    programme = make_programme(database, name="Earth Care", locale="fr-FR")
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=programme_document(), actor="test")
        live = session.get(Programme, programme.id)
        assert live is not None
    member = make_member(
        database, live, email="noor.haddad@example.com", first_name="Noor", last_name="Haddad"
    )
    with database.transaction() as session:
        operations.award(
            session,
            programme=live,
            member_id=member.id,
            wallet="points",
            amount=600,
            idempotency_key=f"bp-{member.id}",
        )
    email = new_user(database, [(live, Role.owner)], locale="en")
    context = chromium.new_context(locale="en-GB", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    admin = f"{base}/admin/p/{live.slug}"
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{admin}/")

    # the document as tables, then the editor
    page.get_by_role("link", name="Programme", exact=True).click()
    assert "Live version: 1" in page.inner_text("main")
    shoot(page, "programme")
    page.get_by_role("link", name="Edit the document").click()
    editor = page.get_by_label("Document (YAML)")
    text = editor.input_value()
    assert "rate: '0.1'" in text
    # a wrong value: the error names its path and line, and the text stays
    editor.fill(text.replace("rate: '0.1'", "rate: lots", 1))
    page.get_by_role("button", name="Check").click()
    problem = page.locator("#problems").inner_text()
    assert re.search(r"line \d+: rules\.\d+\.award", problem), problem
    assert "rate: lots" in page.get_by_label("Document (YAML)").input_value()
    # fixed: valid, with its diff
    page.get_by_label("Document (YAML)").fill(text.replace("rate: '0.1'", "rate: '0.2'", 1))
    page.get_by_role("button", name="Check").click()
    assert "The draft is valid." in page.locator("#checked").inner_text()
    assert "+    rate: '0.2'" in page.locator("#diff").inner_text()
    page.get_by_role("button", name="Dry-run", exact=True).click()
    assert "Dry-run result" in page.locator("#dry-run").inner_text()
    page.get_by_role("button", name="Back-test", exact=True).click()
    assert "Back-test: live and draft" in page.locator("#backtest").inner_text()
    shoot(page, "programme-editor")
    page.get_by_label("Comment (why this version)").fill("Double status points")
    page.get_by_role("button", name="Publish as a new version").click()
    assert "Version 2 is published and live." in page.get_by_role("status").inner_text()

    # a reward redeemed on the member's behalf
    page.goto(f"{admin}/members/{member.id}")
    page.get_by_label("Reward", exact=True).select_option("voucher-10-eur")
    page.get_by_label("Reason for the redemption").fill("Asked at the till")
    page.get_by_role("button", name="Redeem", exact=True).click()
    assert "Done, and recorded in the audit log." in page.get_by_role("status").inner_text()
    balance = page.locator('[data-wallet="points"][data-field="available"]')
    assert balance.inner_text() == "400"
    shoot(page, "member-actions")

    # at the till: found by email, with what they hold
    page.get_by_role("link", name="In store").click()
    page.get_by_label("Card, phone or email").fill("noor.haddad@example.com")
    page.keyboard.press("Enter")
    till = page.locator("#till").inner_text()
    assert "Noor Haddad" in till
    assert "BON10-" in till
    shoot(page, "store")
    page.get_by_role("link", name="Rewards", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Rewards and vouchers"
    shoot(page, "rewards")
    page.get_by_role("link", name="Operations").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Operations"
    context.close()
