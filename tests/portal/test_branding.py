"""White label: each programme's theme, name, manifest and icons, its own files (and no
others), its legal pages, its own host name; no Fidelia branding unless asked."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fidelia.db import Database
from fidelia.models import Programme
from fidelia.portal import branding
from tests.fixtures.factories import make_programme
from tests.portal.conftest import apply, document

GREEN = {"primary": "#0b6e4f", "accent": "#f4a259", "background": "#f1f7f4"}
LEGAL = [
    {
        "slug": "terms",
        "title": {"fr": "Conditions", "en": "Terms"},
        "text": {"fr": "Le programme est gratuit.", "en": "The programme is free."},
    }
]


@pytest.fixture
def green(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Programme:
    monkeypatch.setenv("FIDELIA_PORTAL_ASSETS", str(tmp_path))
    programme = make_programme(database)
    folder = tmp_path / programme.slug
    folder.mkdir()
    (folder / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / "brand.woff2").write_bytes(b"wOF2fake")
    (folder / "secret.txt").write_text("not named by the document")
    section = {
        "name": "Les Jardins",
        "short_name": "Jardins",
        "logo": "logo.svg",
        "theme": {**GREEN, "font_family": "Brand Sans", "font_files": ["brand.woff2"]},
        "legal": LEGAL,
        "support": {"email": "aide@jardins.example"},
        "default_locale": "en",
        "host": "club.jardins.example",
    }
    return apply(database, programme, document(**section))


def test_each_programme_renders_with_its_own_theme_and_name(
    portal_app: FastAPI, database: Database, green: Programme, club: Programme
) -> None:
    client = TestClient(portal_app)
    page = client.get(f"/portal/{green.slug}/sign-in").text
    css = client.get(f"/portal/{green.slug}/theme.css")
    default_css = client.get(f"/portal/{club.slug}/theme.css").text

    assert "<title>Les Jardins</title>" in page
    assert f'src="/portal/{green.slug}/assets/logo.svg"' in page
    assert "Fidelia" not in page
    assert css.headers["content-type"].startswith("text/css")
    assert "--primary:#0b6e4f" in css.text
    assert "--accent:#f4a259" in css.text
    assert 'font-family:"brand";src:url("assets/brand.woff2")' in css.text
    assert '"Brand Sans"' in css.text
    assert "--primary:#1f4e79" in default_css
    assert 'href="mailto:aide@jardins.example"' in page
    assert "Club Test" in client.get(f"/portal/{club.slug}/sign-in").text


def test_only_the_files_the_document_names_are_served(
    portal_app: FastAPI, green: Programme
) -> None:
    client = TestClient(portal_app)
    base = f"/portal/{green.slug}/assets"

    assert client.get(f"{base}/logo.svg").headers["content-type"] == "image/svg+xml"
    assert client.get(f"{base}/brand.woff2").status_code == 200
    assert client.get(f"{base}/secret.txt").status_code == 404
    assert client.get(f"{base}/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_the_manifest_and_icons_make_it_installable(portal_app: FastAPI, green: Programme) -> None:
    client = TestClient(portal_app)
    manifest = client.get(f"/portal/{green.slug}/manifest.webmanifest").json()

    assert manifest["name"] == "Les Jardins"
    assert manifest["short_name"] == "Jardins"
    assert manifest["start_url"] == f"/portal/{green.slug}/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#0b6e4f"
    for icon in manifest["icons"]:
        png = client.get(icon["src"])
        assert png.headers["content-type"] == "image/png"
        assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png.content[16:24])
        assert f"{width}x{height}" == icon["sizes"]
    assert client.get(f"/portal/{green.slug}/icon-64.png").status_code == 404


def test_legal_pages_in_the_readers_language(portal_app: FastAPI, green: Programme) -> None:
    client = TestClient(portal_app)

    english = client.get(f"/portal/{green.slug}/legal/terms")
    french = client.get(f"/portal/{green.slug}/legal/terms?lang=fr")

    assert "The programme is free." in english.text
    assert "Le programme est gratuit." in french.text
    assert client.get(f"/portal/{green.slug}/legal/cookies").status_code == 404


def test_the_programmes_host_name_serves_its_portal_at_the_root(
    portal_app: FastAPI, green: Programme
) -> None:
    branding.forget_hosts()
    client = TestClient(portal_app, base_url="https://club.jardins.example", follow_redirects=False)

    page = client.get("/sign-in")
    unknown = TestClient(
        portal_app, base_url="https://elsewhere.example", follow_redirects=False
    ).get("/sign-in")

    assert page.status_code == 200
    assert "Les Jardins" in page.text
    assert unknown.status_code == 404
    assert client.get("/healthz").json() == {"status": "ok"}


def test_an_unknown_programme_is_a_404_page(portal_app: FastAPI) -> None:
    response = TestClient(portal_app).get("/portal/no-such-programme/sign-in")

    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]


def test_a_bad_colour_in_the_document_is_refused_with_its_path(
    database: Database, api_factory: object
) -> None:
    from collections.abc import Callable

    from tests.fixtures.factories import Api

    assert callable(api_factory)
    factory: Callable[[Programme], Api] = api_factory
    programme = make_programme(database)
    api = factory(programme)
    response = api.put("/programme/document", json={"portal": {"theme": {"primary": "red"}}})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"][:4] == ["body", "portal", "theme", "primary"]
    assert api.get("/programme/document").json()["version"] == 0
