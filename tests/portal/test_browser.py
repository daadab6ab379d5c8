"""The member portal in a real browser at a phone's size: Playwright for Python driving
Debian's chromium against the whole app under uvicorn on 127.0.0.1, the sign-in code read
from a real SMTP server (aiosmtpd) the test starts. The journey: join, receive the code, sign
in, read the balance and the tier progress, redeem a voucher and see its QR code, donate,
change consents, download my data, sign out; in English and in French. A second programme
renders with its own colours.

Screenshots (phone 390 and desktop 1280 wide) go to docs/screenshots/portal-*.png with
FIDELIA_SCREENSHOTS=1 (`make screenshots`), to a temporary folder otherwise. Without
/usr/bin/chromium the test skips, unless FIDELIA_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from fidelia.api.app import create_app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from tests.conftest import dispose_database, new_database
from tests.fixtures.browser import chromium, require_browser, serve
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import make_keys, make_programme
from tests.portal.conftest import apply, document
from tests.users.mailbox import Inbox

SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("FIDELIA_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="fidelia-portal-screenshots-"))
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
CODE = re.compile(r"\b(\d{6})\b")

pytestmark = pytest.mark.xdist_group("browser")
__all__ = ["chromium"]


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 that the app's settings point at."""
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    saved = {k: os.environ.get(k) for k in ("FIDELIA_SMTP_HOST", "FIDELIA_SMTP_PORT")}
    os.environ["FIDELIA_SMTP_HOST"], os.environ["FIDELIA_SMTP_PORT"] = "127.0.0.1", str(port)
    get_settings.cache_clear()
    yield inbox
    controller.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mailbox: Inbox
) -> Iterator[tuple[str, Database]]:
    require_browser()
    database, url = new_database("sqlite", tmp_path_factory.mktemp("portal-browser"))
    with serve(create_app(database)) as base:
        yield base, database
    dispose_database(database, url)


def shoot(page: Any, name: str, *, desktop: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"portal-{name}-phone.png"), full_page=False)
    if desktop:
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(SHOTS / f"portal-{name}-desktop.png"), full_page=False)
        page.set_viewport_size(PHONE)


def _code(mailbox: Inbox, email: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in reversed(mailbox.messages):
            if message["To"] == email:
                found = CODE.search(str(message.get_payload(decode=True).decode()))
                assert found is not None
                return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no code was sent to {email}")


def _buy(base: str, database: Database, programme: Programme, email: str, amount: str) -> None:
    """A purchase through the API, as a till sends it (rules, badges, challenges run)."""
    key = make_keys(database, programme)["integration"]
    payload = purchase({"email": email}, lines=[line("sku", 1, amount)], occurred_at=utcnow())
    response = httpx.post(
        f"{base}/api/v1/events",
        json=payload,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text


WORDS = {
    "en": {"join": "Join", "first": "First name", "email": "Email", "terms":
           "I accept the terms of the programme", "code": "Code", "sign_in": "Sign in",
           "level": "Your level", "rewards": "Rewards", "redeem": "Redeem", "confirm": "Confirm",
           "donate": "Donate", "history": "History", "prefs": "Preferences", "save":
           "Save my choices", "saved": "Saved.", "download": "Download my data",
           "out": "Sign out", "signed_out": "You are signed out.", "sms": "SMS",
           "voucher": "10 € voucher", "tree": "Plant a tree", "reach": "To reach Silver"},
    "fr": {"join": "Adhérer", "first": "Prénom", "email": "E-mail", "terms":
           "J'accepte les conditions du programme", "code": "Code", "sign_in": "Se connecter",
           "level": "Votre niveau", "rewards": "Récompenses", "redeem": "Échanger",
           "confirm": "Confirmer", "donate": "Faire un don", "history": "Historique",
           "prefs": "Préférences", "save": "Enregistrer mes choix", "saved": "Enregistré.",
           "download": "Télécharger mes données", "out": "Se déconnecter",
           "signed_out": "Vous êtes déconnecté·e.", "sms": "SMS", "voucher": "Bon de 10 €",
           "tree": "Planter un arbre", "reach": "Pour atteindre Argent"},
}  # fmt: skip


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_member_journey_on_a_phone(
    server: tuple[str, Database], chromium: Any, mailbox: Inbox, lang: str
) -> None:
    base, database = server
    w = WORDS[lang]
    programme = apply(database, make_programme(database, name="Maison Verte"), document())
    email = f"claire-{uuid.uuid4().hex[:6]}@example.com"
    context = chromium.new_context(locale=lang, viewport=PHONE, is_mobile=True, has_touch=True,
                                   accept_downloads=True)  # fmt: skip
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    portal = f"{base}/portal/{programme.slug}"

    # join: the enrolment runs the welcome rule, the code comes by email
    page.goto(f"{portal}/join")
    page.get_by_label(w["first"]).fill("Claire")
    page.get_by_role("textbox", name=w["email"]).fill(email)
    page.get_by_label(w["terms"]).check()
    if lang == "en":
        shoot(page, "join")
    page.get_by_role("button", name=w["join"]).click()
    page.get_by_label(w["code"]).fill(_code(mailbox, email))
    page.get_by_role("button", name=w["sign_in"]).click()
    page.wait_for_url(f"{portal}/")
    assert page.locator('[data-wallet="points"] .big').inner_text() == "150"
    _buy(base, database, programme, email, "250.00")
    page.reload()
    assert page.locator('[data-wallet="points"] .big').inner_text() == "400"
    tier = page.locator("section.tier").inner_text()
    assert w["level"] in tier
    assert w["reach"] in tier
    assert page.locator("article.challenge progress").count() == 1
    if lang == "en":
        shoot(page, "home", desktop=True)

    # redeem a voucher (a confirmation step) and see its QR code
    page.get_by_role("link", name=w["rewards"], exact=True).click()
    if lang == "en":
        shoot(page, "rewards", desktop=True)
    page.locator('[data-reward="voucher-10"]').get_by_role("link", name=w["redeem"]).click()
    page.get_by_role("button", name=w["confirm"]).dblclick()  # a double click charges once
    page.wait_for_url(re.compile(r"/vouchers\?done=voucher"))
    qr = page.locator("article.voucher img.qr")
    assert qr.count() == 1
    assert qr.evaluate("img => img.naturalWidth") > 0
    if lang == "en":
        shoot(page, "voucher", desktop=True)
    page.get_by_role("link", name=w["rewards"], exact=True).click()
    assert "200" in page.locator("p.muted").first.inner_text()

    # donate
    page.locator('[data-reward="trees"]').get_by_role("link", name=w["donate"]).click()
    page.get_by_role("button", name=w["confirm"]).click()
    page.wait_for_url(re.compile(r"/history"))
    assert w["tree"] in page.locator("main").inner_text()

    # consents, my data
    page.get_by_role("link", name=w["prefs"]).click()
    page.get_by_label(w["sms"], exact=True).check()
    page.get_by_role("button", name=w["save"]).click()
    assert page.get_by_role("status").inner_text() == w["saved"]
    assert page.get_by_label(w["sms"], exact=True).is_checked()
    with page.expect_download() as download:
        page.get_by_role("link", name=w["download"]).click()
    data = json.loads(Path(download.value.path()).read_text())
    assert email in json.dumps(data)

    # sign out
    page.get_by_role("button", name=w["out"]).click()
    assert w["signed_out"] in page.locator("main").inner_text()
    page.goto(f"{portal}/")
    assert page.url.endswith("/sign-in")
    if lang == "en":
        shoot(page, "sign-in")
    context.close()


def test_a_second_programme_renders_with_its_own_colours(
    server: tuple[str, Database], chromium: Any
) -> None:
    base, database = server
    theme = {"primary": "#0b6e4f", "accent": "#f4a259", "background": "#f1f7f4"}
    green = apply(database, make_programme(database), document(name="Les Jardins", theme=theme))
    plain = apply(database, make_programme(database), document())
    context = chromium.new_context(locale="fr", viewport=PHONE, is_mobile=True)
    page = context.new_page()

    colours = {}
    for programme in (green, plain):
        page.goto(f"{base}/portal/{programme.slug}/sign-in")
        colours[programme.slug] = page.locator("header.bar").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
    assert colours[green.slug] == "rgb(11, 110, 79)"
    assert colours[plain.slug] == "rgb(31, 78, 121)"
    page.goto(f"{base}/portal/{green.slug}/sign-in")
    assert page.title() == "Les Jardins"
    shoot(page, "theme-green")
    context.close()
