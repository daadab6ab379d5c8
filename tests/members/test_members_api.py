"""Members through the API: enrol, identities, lookup, list, profile, consents, status."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from fidelia.db import Database
from fidelia.models import Consent, ConsentChange, Member, MemberIdentity
from tests.fixtures.factories import Api, count_rows


def enrol_body(**extra: object) -> dict[str, object]:
    return {
        "card": "1234 5678 9012",
        "email": "Alice.Martin@Example.COM",
        "phone": "06 12 34 56 78",
        "external_ids": [{"namespace": "shopify", "value": "cus_42"}],
        "channel": "web",
        "store": "lyon-1",
        "first_name": "Alice",
        "last_name": "Martin",
        "birth_date": "1990-05-17",
        "locale": "fr-FR",
        "postal_code": "69001",
        "attributes": {"shoe_size": 38},
        "consents": [
            {"channel": "email", "granted": True},
            {"channel": "sms", "granted": False, "source": "till"},
        ],
        **extra,
    }


def test_enrol_with_every_identity_and_consents(api: Api) -> None:
    response = api.post("/members", json=enrol_body(), scope="integration")

    assert response.status_code == 201
    member = response.json()
    assert member["status"] == "active"
    assert member["enrolment_channel"] == "web"
    assert member["enrolment_store"] == "lyon-1"
    assert member["birth_date"] == "1990-05-17"
    assert member["attributes"] == {"shoe_size": 38}
    assert {(i["kind"], i["namespace"], i["value"]) for i in member["identities"]} == {
        ("card", "", "123456789012"),
        ("email", "", "alice.martin@example.com"),
        ("phone", "", "+33612345678"),
        ("external", "shopify", "cus_42"),
    }
    consents = {c["channel"]: c for c in member["consents"]}
    assert consents["email"]["granted"] is True
    assert consents["email"]["source"] == "enrolment:web"
    assert consents["sms"]["granted"] is False
    assert consents["sms"]["source"] == "till"
    assert member.pop("enrolment")["status"] == "accepted"  # the enrolment event's outcome
    assert api.get(f"/members/{member['id']}", scope="read").json() == member


def test_a_duplicate_identity_is_409_naming_the_field_and_writes_nothing(
    api: Api, database: Database
) -> None:
    api.post("/members", json={"email": "taken@example.com"})

    response = api.post(
        "/members",
        json={"card": "NEW-CARD", "phone": "0611111111", "email": "TAKEN@example.com"},
    )

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert [f["loc"] for f in body["fields"]] == [["body", "email"]]
    assert "email" in body["detail"]
    programme = Member.programme_id == api.programme.id
    assert count_rows(database, Member, programme) == 1
    assert (
        count_rows(database, MemberIdentity, MemberIdentity.programme_id == api.programme.id) == 1
    )


def test_a_duplicate_external_id_names_its_index(api: Api) -> None:
    api.post("/members", json={"external_ids": [{"namespace": "app", "value": "u1"}]})

    response = api.post(
        "/members",
        json={
            "external_ids": [
                {"namespace": "shop", "value": "u1"},
                {"namespace": "app", "value": "u1"},
            ]
        },
    )

    assert response.status_code == 409
    assert [f["loc"] for f in response.json()["fields"]] == [["body", "external_ids", 1]]


def test_the_same_identity_twice_in_one_enrolment_is_422(api: Api) -> None:
    response = api.post(
        "/members",
        json={
            "external_ids": [
                {"namespace": "app", "value": "u1"},
                {"namespace": "app", "value": "u1"},
            ]
        },
    )

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "external_ids", 1]


def test_identities_are_unique_per_programme_only(
    api_factory: object, programme_factory: object
) -> None:
    brand_a = api_factory(programme_factory())  # type: ignore[operator]
    brand_b = api_factory(programme_factory())  # type: ignore[operator]

    assert brand_a.post("/members", json={"email": "same@example.com"}).status_code == 201
    assert brand_b.post("/members", json={"email": "same@example.com"}).status_code == 201


@pytest.mark.parametrize(
    "query",
    [
        {"card": "1234 5678 9012"},
        {"card": "123456789012"},
        {"email": "alice.martin@example.com"},
        {"email": "ALICE.MARTIN@EXAMPLE.COM"},
        {"phone": "+33612345678"},
        {"phone": "06 12 34 56 78"},
        {"phone": "+33 6 12 34 56 78"},
        {"phone": "0612345678"},
        {"namespace": "shopify", "external_id": "cus_42"},
    ],
)
def test_lookup_by_any_identity_in_any_format(api: Api, query: dict[str, str]) -> None:
    member = api.post("/members", json=enrol_body()).json()

    response = api.get("/members/lookup", params=query, scope="read")

    assert response.status_code == 200
    assert response.json()["id"] == member["id"]


def test_a_phone_is_read_in_the_programme_country(
    api_factory: object, programme_factory: object
) -> None:
    belgian = api_factory(programme_factory(country="BE"))  # type: ignore[operator]

    member = belgian.post("/members", json={"phone": "0470 12 34 56"}).json()

    assert member["identities"] == [{"kind": "phone", "namespace": "", "value": "+32470123456"}]


def test_lookup_of_an_unknown_identity_is_404_and_of_nothing_is_422(api: Api) -> None:
    assert api.get("/members/lookup", params={"email": "nobody@example.com"}).status_code == 404
    assert api.get("/members/lookup").status_code == 422
    response = api.get("/members/lookup", params={"namespace": "shop"})
    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["query", "external_id"]


def test_an_invalid_phone_is_422(api: Api) -> None:
    response = api.post("/members", json={"phone": "12"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "phone"]


def test_add_an_identity_to_a_member(api: Api) -> None:
    member = api.post("/members", json={"email": "a@example.com"}).json()
    api.post("/members", json={"card": "TAKEN"})

    added = api.post(f"/members/{member['id']}/identities", json={"kind": "card", "value": "c 9"})
    taken = api.post(f"/members/{member['id']}/identities", json={"kind": "card", "value": "taken"})
    no_ns = api.post(f"/members/{member['id']}/identities", json={"kind": "external", "value": "x"})

    assert added.status_code == 201
    assert api.get("/members/lookup", params={"card": "C9"}).json()["id"] == member["id"]
    assert taken.status_code == 409
    assert no_ns.status_code == 422
    assert no_ns.json()["fields"][0]["loc"] == ["body", "namespace"]


def test_list_pages_cover_every_member_exactly_once(api: Api) -> None:
    ids = [api.post("/members", json={"card": f"CARD-{i}"}).json()["id"] for i in range(23)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/members", params=params, scope="read").json()
        seen.extend(m["id"] for m in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 5
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))


def test_list_with_an_exact_multiple_of_the_page_size_ends_without_an_empty_page(api: Api) -> None:
    for i in range(4):
        api.post("/members", json={"card": f"CARD-{i}"})

    first = api.get("/members", params={"limit": 2}).json()
    second = api.get("/members", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


def test_list_filters_by_status_channel_store_and_enrolment_date(api: Api) -> None:
    def enrol(card: str, **extra: object) -> str:
        return str(api.post("/members", json={"card": card, **extra}).json()["id"])

    web = enrol("A", channel="web", enrolled_at="2024-01-10T09:00:00+00:00")
    store = enrol("B", channel="store", store="paris-2", enrolled_at="2024-02-10T09:00:00Z")
    late = enrol("C", channel="store", store="lyon-1", enrolled_at="2024-03-10T09:00:00Z")
    api.post(f"/members/{late}/status", json={"status": "suspended"})

    def listed(**params: object) -> set[str]:
        return {m["id"] for m in api.get("/members", params=params).json()["items"]}

    assert listed(channel="web") == {web}
    assert listed(store="paris-2") == {store}
    assert listed(status="suspended") == {late}
    assert listed(status="active") == {web, store}
    assert listed(enrolled_after="2024-02-01T00:00:00Z") == {store, late}
    assert listed(enrolled_before="2024-02-01T00:00:00+00:00") == {web}
    assert listed(channel="store", status="active") == {store}


def test_a_bad_cursor_is_422(api: Api) -> None:
    response = api.get("/members", params={"cursor": "garbage!"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["query", "cursor"]


def test_a_date_filter_without_a_time_zone_is_422_not_500(api: Api) -> None:
    response = api.get("/members", params={"enrolled_after": "2024-02-01T00:00:00"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["query", "enrolled_after"]


def test_an_enrolment_date_without_a_time_zone_is_422_and_writes_nothing(
    api: Api, database: Database
) -> None:
    response = api.post("/members", json={"card": "X1", "enrolled_at": "2024-02-01T10:00:00"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "enrolled_at"]
    assert count_rows(database, Member, Member.programme_id == api.programme.id) == 0


def test_profile_update_merges_attributes_and_null_deletes(api: Api) -> None:
    member = api.post(
        "/members",
        json={"email": "p@example.com", "first_name": "Ann", "attributes": {"a": 1, "b": 2}},
    ).json()

    response = api.patch(
        f"/members/{member['id']}",
        json={"last_name": "Lee", "attributes": {"b": None, "c": {"nested": True}}},
        scope="integration",
    )

    assert response.status_code == 200
    updated = response.json()
    assert updated["first_name"] == "Ann"
    assert updated["last_name"] == "Lee"
    assert updated["attributes"] == {"a": 1, "c": {"nested": True}}
    assert api.get(f"/members/{member['id']}").json()["attributes"] == {
        "a": 1,
        "c": {"nested": True},
    }


def test_profile_update_refuses_unknown_fields(api: Api) -> None:
    member = api.post("/members", json={"email": "p@example.com"}).json()

    response = api.patch(f"/members/{member['id']}", json={"status": "closed"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "status"]
    assert api.get(f"/members/{member['id']}").json()["status"] == "active"


def test_consent_changes_are_all_kept_in_the_history(api: Api, database: Database) -> None:
    member = api.post(
        "/members",
        json={"email": "c@example.com", "consents": [{"channel": "email", "granted": True}]},
    ).json()
    path = f"/members/{member['id']}/consents"

    api.post(path, json={"channel": "email", "granted": False, "source": "unsubscribe-link"})
    last = api.post(path, json={"channel": "email", "granted": True}, scope="integration")

    assert last.status_code == 200
    assert last.json()["granted"] is True
    assert last.json()["source"] == "api"
    history = api.get(f"{path}/history", scope="read").json()
    assert [(c["channel"], c["granted"]) for c in history] == [
        ("email", True),
        ("email", False),
        ("email", True),
    ]
    assert history[1]["source"] == "unsubscribe-link"
    (current,) = api.get(f"/members/{member['id']}").json()["consents"]
    assert current["granted"] is True
    member_id = uuid.UUID(member["id"])
    assert count_rows(database, ConsentChange, ConsentChange.member_id == member_id) == 3
    assert count_rows(database, Consent, Consent.member_id == member_id) == 1


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (["suspended", "active", "closed"], [True, True, True]),
        (["closed", "active"], [True, False]),
        (["closed", "suspended"], [True, False]),
        (["suspended", "closed", "active"], [True, True, False]),
    ],
)
def test_status_transitions_and_closed_is_final(
    api: Api, path: list[str], allowed: list[bool]
) -> None:
    member = api.post("/members", json={"email": "s@example.com"}).json()

    codes = [
        api.post(f"/members/{member['id']}/status", json={"status": s}).status_code for s in path
    ]

    assert codes == [200 if ok else 409 for ok in allowed]
    last_allowed = [s for s, ok in zip(path, allowed, strict=True) if ok][-1]
    assert api.get(f"/members/{member['id']}").json()["status"] == last_allowed


def test_status_changes_need_an_admin_key(api: Api) -> None:
    member = api.post("/members", json={"email": "s@example.com"}).json()

    response = api.post(
        f"/members/{member['id']}/status", json={"status": "closed"}, scope="integration"
    )

    assert response.status_code == 403
    assert api.get(f"/members/{member['id']}").json()["status"] == "active"


def test_enrolled_at_is_stored_in_utc(api: Api) -> None:
    member = api.post(
        "/members", json={"card": "TZ", "enrolled_at": "2024-06-01T12:00:00+02:00"}
    ).json()

    stored = datetime.fromisoformat(member["enrolled_at"])
    assert stored == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
