"""Bad input: a template that does not compile or names an unknown variable, a channel without
configuration, an unknown member or template: 422 (with the path) or 404, nothing saved. And
the preview, which renders for a chosen member and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from fidelia.db import Database
from fidelia.models import Job, ProgrammeVersion
from fidelia.models.messaging import Message
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.messaging.conftest import WELCOME, apply, enrol, messaging_doc


def _versions(database: Database, api: Api) -> int:
    return count_rows(database, ProgrammeVersion, ProgrammeVersion.programme_id == api.programme.id)


def _nothing_sent(database: Database, api: Api) -> None:
    assert count_rows(database, Message, Message.programme_id == api.programme.id) == 0
    assert (
        count_rows(
            database, Job, Job.programme_id == api.programme.id, Job.kind == "messaging.deliver"
        )
        == 0
    )


def _with_text(text: str, part: str = "text") -> dict[str, Any]:
    return {"code": "broken", "locales": {"fr": {"subject": "S", "text": "T", part: text}}}


@pytest.mark.parametrize(
    ("template", "says"),
    [
        (_with_text("Bonjour {{ member.first_name "), "does not compile"),
        (_with_text("{% if %}"), "does not compile"),
        (_with_text("Bonjour {{ membre.first_name }}"), "unknown variable 'membre'"),
        (_with_text("{{ member.frist_name }}"), "fails on a sample member"),
        (_with_text("<p>{{ points.points / 0 }}</p>", "html"), "fails on a sample member"),
        (_with_text("{{ ''.__class__.__mro__ }}"), "fails on a sample member"),
    ],
)
def test_a_bad_template_is_refused_when_the_document_is_saved(
    api: Api, database: Database, template: dict[str, Any], says: str
) -> None:
    apply(api, messaging_doc())
    before = _versions(database, api)
    response = api.put("/programme/document", json=messaging_doc(templates=[WELCOME, template]))
    assert response.status_code == 422, response.text
    field = response.json()["fields"][0]
    assert field["loc"][:6] == ["body", "messaging", "templates", 1, "locales", "fr"]
    assert says in field["msg"]
    assert _versions(database, api) == before


def test_a_fallback_channel_without_configuration_is_refused(api: Api, database: Database) -> None:
    doc = messaging_doc()
    doc["messaging"]["fallback"] = ["inbox", "sms"]
    response = api.put("/programme/document", json=doc)
    assert response.status_code == 422, response.text
    assert "fallback.1: channel 'sms' is not configured" in response.json()["detail"]
    assert _versions(database, api) == 0


def test_sending_on_a_channel_without_configuration_is_a_422_naming_it(
    api: Api, database: Database
) -> None:
    apply(api, messaging_doc())  # the inbox only
    member = enrol(api, email=unique_email(), consents={"email": True})
    body = {"member": {"id": member}, "template": "welcome", "channels": ["inbox", "email"]}
    response = api.post("/messages", json=body, scope="integration")
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "channels", 1]
    _nothing_sent(database, api)


def test_an_unknown_member_or_template_sends_nothing(api: Api, database: Database) -> None:
    apply(api, messaging_doc())
    member = enrol(api, email=unique_email())
    unknown = {"member": {"email": "nobody@example.org"}, "template": "welcome"}
    assert api.post("/messages", json=unknown, scope="integration").status_code == 404
    missing = {"member": {"id": member}, "template": "nope", "channels": ["inbox"]}
    response = api.post("/messages", json=missing, scope="integration")
    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "template"]
    both = {"member": {"id": member}, "template": "welcome", "content": {"fr": {"text": "x"}}}
    assert api.post("/messages", json=both, scope="integration").status_code == 422
    inline = {
        "member": {"id": member},
        "content": {"fr": {"text": "{{ nope }}"}},
        "channels": ["inbox"],
    }
    response = api.post("/messages", json=inline, scope="integration")
    assert response.status_code == 422
    assert "unknown variable 'nope'" in response.text
    _nothing_sent(database, api)


def test_without_a_messaging_section_nothing_can_be_sent(api: Api, database: Database) -> None:
    member = enrol(api, email=unique_email())
    body = {"member": {"id": member}, "content": {"fr": {"text": "x"}}, "channels": ["inbox"]}
    response = api.post("/messages", json=body, scope="integration")
    assert response.status_code == 422
    assert "no messaging section" in response.text
    _nothing_sent(database, api)


def test_the_preview_renders_for_a_chosen_member_and_writes_nothing(
    api: Api, database: Database
) -> None:
    apply(api, messaging_doc())
    member = enrol(api, email=unique_email(), first_name="Zoé", locale="en")
    body = {"member_id": member, "template": "welcome", "channel": "sms"}
    response = api.post("/messages/preview", json=body, scope="read")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "channel": "sms", "locale": "en", "subject": None, "text": None, "html": None,
        "sms": "Welcome Zoé!",
    }  # fmt: skip
    conditional = {
        "member_id": member,
        "channel": "inbox",
        "event": {"cart": [{"name": "Croquettes XL"}]},
        "content": {"fr": {"subject": "Panier", "text": (
            "{% for line in event.cart %}{{ line.name }}{% endfor %}"
            "{% if traits.promotion_sensitive %} -20%{% else %} livraison offerte{% endif %}"
            " {{ tier.next or 'aucun' }} {{ expiring.points.points }}"
        )}},
    }  # fmt: skip
    rendered = api.post("/messages/preview", json=conditional, scope="read").json()
    assert rendered["text"] == "Croquettes XL livraison offerte aucun 0"
    unknown = api.post(
        "/messages/preview", json={**body, "member_id": "019ceb9e-6018-78a4-ad11-f033b48438b5"},
        scope="read",
    )  # fmt: skip
    assert unknown.status_code == 404
    _nothing_sent(database, api)
