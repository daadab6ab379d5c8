"""The portal's white label previewed in the back-office (issue 13): the live document's
portal section (colours, logo, host, legal pages) with a drawing of a portal page in its
colours and links to the real portal; the defaults when the document has no portal section."""

from __future__ import annotations

import re
from collections.abc import Callable

from fidelia.db import Database
from fidelia.models import Programme
from fidelia.programmes import documents
from fidelia.rules.demo import programme_document
from fidelia.users.service import Role
from tests.fixtures.factories import make_programme
from tests.web.conftest import Browser


def test_the_preview_draws_the_programmes_own_colours(
    signed_in: Callable[..., Browser], database: Database
) -> None:
    document = programme_document()
    document["portal"] = {
        "name": "Club Terre",
        "theme": {"primary": "#0a7d4f", "accent": "#f2a900"},
        "host": "club.earthcare.example",
        "legal": [{"slug": "terms", "title": {"en": "Terms"}, "text": {"en": "The terms."}}],
    }
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=document, actor="test")
    page = signed_in(programme, Role.analyst).get(f"/admin/p/{programme.slug}/portal")
    assert page.status_code == 200
    mock = re.search(r'<svg class="portal-mock".*?</svg>', page.text, re.S)
    assert mock is not None
    assert 'fill="#0a7d4f"' in mock.group(0)  # the header in the primary colour
    assert 'fill="#f2a900"' in mock.group(0)  # the button in the accent
    assert "Club Terre" in mock.group(0)
    assert '<code data-colour="primary">#0a7d4f</code>' in page.text
    assert "club.earthcare.example" in page.text
    assert f'href="/portal/{programme.slug}/legal/terms"' in page.text
    assert f'href="/portal/{programme.slug}/sign-in"' in page.text


def test_without_a_portal_section_the_defaults_are_shown(
    signed_in: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    page = signed_in(programme, Role.owner).get(f"/admin/p/{programme.slug}/portal")
    assert page.status_code == 200
    assert "the portal shows its defaults" in page.text
    assert '<code data-colour="primary">#1f4e79</code>' in page.text
    other = signed_in(make_programme(database), Role.owner)
    assert other.get(f"/admin/p/{programme.slug}/portal").status_code == 404
