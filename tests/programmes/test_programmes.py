"""Programmes: created with validated settings; read and changed through their own keys."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from fidelia.db import Database
from fidelia.errors import Conflict, NotFound
from fidelia.models import Programme
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate
from tests.fixtures.factories import Api


def test_a_programme_is_created_with_normalised_settings(database: Database) -> None:
    with database.transaction() as session:
        created = programmes.create(
            session,
            data=ProgrammeCreate(
                slug="earth-care-x1",
                name="Earth Care",
                currency="eur",
                locale="fr_fr",
                country="be",
            ),
        )
    with database.transaction(readonly=True) as session:
        found = programmes.get_by_slug(session, slug="earth-care-x1")

    assert found.id == created.id
    assert (found.currency, found.locale, found.country) == ("EUR", "fr-FR", "BE")
    assert found.settings["unknown_member"] == "reject"
    assert found.settings["merge"] == {"on_sure_match": "reject"}
    assert found.settings["privacy"] == {"retention_months": None}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "EUX"),
        ("timezone", "Mars/Olympus"),
        ("locale", "xx-YY"),
        ("country", "ZZ"),
        ("slug", "Not A Slug"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(field: str, value: str) -> None:
    fields = {"slug": "ok-slug", "name": "x", field: value}

    with pytest.raises(ValidationError) as error:
        ProgrammeCreate(**fields)  # type: ignore[arg-type]

    assert error.value.errors()[0]["loc"] == (field,)


def test_a_slug_is_unique(
    database: Database, programme_factory: Callable[..., Programme], programme: Programme
) -> None:
    with pytest.raises(Conflict):
        programme_factory(slug=programme.slug)


def test_an_unknown_slug_is_not_found(database: Database) -> None:
    with pytest.raises(NotFound), database.transaction(readonly=True) as session:
        programmes.get_by_slug(session, slug="no-such-programme")


def test_a_key_reads_its_programme(api: Api) -> None:
    body = api.get("/programme", scope="read").json()

    assert body["id"] == str(api.programme.id)
    assert body["currency"] == "EUR"
    assert body["settings"]["unknown_member"] == "reject"
    assert body["settings"]["merge"] == {"on_sure_match": "reject"}
    assert body["settings"]["api"]["cors_origins"] == []


def test_an_admin_changes_name_locale_and_policy(api: Api) -> None:
    response = api.patch(
        "/programme",
        json={
            "name": "Renamed",
            "locale": "en_gb",
            "settings": {"unknown_member": "enrol_prospect"},
        },
    )

    assert response.status_code == 200
    body = api.get("/programme").json()
    assert (body["name"], body["locale"]) == ("Renamed", "en-GB")
    assert body["settings"]["unknown_member"] == "enrol_prospect"


def test_an_invalid_policy_is_422_and_changes_nothing(api: Api) -> None:
    response = api.patch("/programme", json={"settings": {"unknown_member": "maybe"}})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "settings", "unknown_member"]
    assert api.get("/programme").json()["settings"]["unknown_member"] == "reject"


def test_the_currency_cannot_be_changed(api: Api) -> None:
    response = api.patch("/programme", json={"currency": "USD"})

    assert response.status_code == 422
    assert api.get("/programme").json()["currency"] == "EUR"
