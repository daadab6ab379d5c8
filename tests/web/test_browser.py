"""The back-office in a real browser: Playwright for Python driving Debian's chromium against
the app under a real uvicorn on 127.0.0.1. Takes screenshots of the main pages (desktop 1280
and tablet 820 wide): into docs/screenshots/admin-*.png with FIDELIA_SCREENSHOTS=1 (`make
screenshots`), into a temporary folder otherwise, so a test run leaves the tree clean.

Without /usr/bin/chromium the test skips, unless FIDELIA_REQUIRE_BROWSER=1 (as in CI), which
turns that into a failure. No browser is ever downloaded.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fidelia.api.app import create_app
from fidelia.db import Database
from fidelia.ledger import operations
from fidelia.models import Member, Programme
from fidelia.users.service import Role
from tests.conftest import dispose_database, new_database
from tests.fixtures.browser import chromium, require_browser, serve
from tests.fixtures.factories import make_member, make_programme
from tests.web.conftest import PASSWORD, new_user

SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("FIDELIA_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="fidelia-screenshots-"))
)
WIDTHS = {"desktop": (1280, 860), "tablet": (820, 1100)}

pytestmark = pytest.mark.xdist_group("browser")
__all__ = ["chromium", "server"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database]]:
    """The whole app (API and back-office) under uvicorn on a free port of 127.0.0.1."""
    require_browser()
    database, url = new_database("sqlite", tmp_path_factory.mktemp("browser"))
    with serve(create_app(database)) as base:
        yield base, database
    dispose_database(database, url)


def setting(database: Database) -> tuple[Programme, Member, str]:
    programme = make_programme(database, name="Maison Verte", locale="fr-FR")
    member = make_member(
        database,
        programme,
        email="claire.martin@example.com",
        first_name="Claire",
        last_name="Martin",
    )
    for i in range(3):
        make_member(database, programme, first_name=f"Membre {i}", last_name="Demo")
    with database.transaction() as session:
        operations.award(
            session,
            programme=programme,
            member_id=member.id,
            wallet="points",
            amount=480,
            idempotency_key=f"b-{member.id}",
            rule_id="purchase-points",
            rule_version=2,
        )
    return programme, member, new_user(database, [(programme, Role.owner)], locale="en")


def shoot(page: Any, name: str) -> None:
    """Screenshots at desktop and tablet widths, then back to desktop."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"admin-{name}-{label}.png"), full_page=False)
    page.set_viewport_size({"width": 1280, "height": 860})


def test_a_marketer_day_in_the_back_office(server: tuple[str, Database], chromium: Any) -> None:
    base, database = server
    programme, member, email = setting(database)
    context = chromium.new_context(locale="en-GB", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    admin = f"{base}/admin/p/{programme.slug}"

    # a wrong password is refused, then the right one signs in
    page.goto(f"{base}/")
    assert "/admin/login" in page.url
    shoot(page, "login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{admin}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    assert "Issued (Points)" in page.inner_text("dl.figures")
    shoot(page, "dashboard")

    # find the member by email, read the balance and the ledger
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Card, email, phone, name or external id").fill("Claire.Martin@example.com")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Claire Martin").click()
    balance = page.locator('[data-wallet="points"][data-field="available"]')
    assert balance.inner_text() == "480"
    assert "purchase-points (v2)" in page.locator("#ledger").inner_text()
    shoot(page, "member")

    # a form without its CSRF token is refused and changes nothing
    page.get_by_label("Amount (negative to debit)").fill("999")
    page.get_by_label("Reason", exact=True).fill("no token")
    page.eval_on_selector("#adjust input[name=csrf_token]", "e => e.remove()")
    page.get_by_role("button", name="Post the adjustment").click()
    assert "security token" in page.get_by_role("alert").inner_text()
    page.goto(f"{admin}/members/{member.id}")
    assert balance.inner_text() == "480"

    # adjust points, see the balance and the audit entry
    page.get_by_label("Amount (negative to debit)").fill("150")
    page.get_by_label("Reason", exact=True).fill("Goodwill after a late delivery")
    page.get_by_role("button", name="Post the adjustment").click()
    assert "recorded in the audit log" in page.get_by_role("status").inner_text()
    assert balance.inner_text() == "630"
    page.get_by_role("link", name="Audit log").first.click()
    row = page.locator("tr.audit-row").first
    assert "Goodwill after a late delivery" in row.inner_text()
    assert email in row.inner_text()
    assert "available: 630" in row.inner_text()
    shoot(page, "audit")

    # create an API key (shown once), then revoke it
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Till 12")
    page.get_by_label("Scope").select_option("integration")
    page.get_by_role("button", name="Create", exact=True).click()
    secret = page.locator("#new-key").inner_text()
    assert re.fullmatch(r"fid_[0-9a-f]{12}_\S+", secret)
    shoot(page, "keys")
    page.get_by_role("button", name="Revoke Till 12").click()
    assert "revoked" in page.get_by_role("row", name=re.compile("Till 12")).inner_text()
    assert secret not in page.content()

    # switch to French
    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Cl\u00e9s d\u2019API"
    page.get_by_role("link", name="Tableau de bord").click()
    assert "Émis (Points)" in page.inner_text("dl.figures")
    shoot(page, "dashboard-fr")
    context.close()
