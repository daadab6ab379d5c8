"""Bad input answers a 4xx in the error shape and writes nothing (issue 17, items 1 to 7).

Each test sends what used to answer 500 (or was stored silently) and checks the status, the
field named, and that no row was written.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.kit.bounds import MAX_BALANCE, MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_POSTING
from fidelia.ledger import wallets
from fidelia.models import Event, LedgerTransaction, Member
from tests.fixtures.factories import Api, count_rows, make_member


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _event(member_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"ev-{uuid.uuid4().hex[:12]}",
        "type": "review",
        "occurred_at": "2026-11-20T10:00:00+01:00",
        "member": {"id": str(member_id)},
        "properties": {"stars": 5},
        **fields,
    }


def _events(database: Database, api: Api) -> int:
    return count_rows(database, Event, Event.programme_id == api.programme.id)


def _field(response: Any) -> list[Any]:
    body = response.json()
    assert set(body) == {"error", "detail", "fields"}
    return [f["loc"] for f in body["fields"]]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("email=ab", ["query", "email"]),
        ("phone=1", ["query", "phone"]),
        ("card=%20", ["query", "card"]),
        ("email=6&namespace=00&external_id=", ["query", "email"]),
        ("email=not-an-email", ["query", "email"]),
        ("namespace=pos", ["query", "external_id"]),
        ("", ["query"]),
    ],
)
def test_lookup_with_a_bad_identity_is_a_422_on_the_query(
    api: Api, query: str, loc: list[str]
) -> None:
    response = api.get(f"/members/lookup?{query}", scope="read")
    assert response.status_code == 422, response.text
    assert loc in _field(response)


def test_lookup_still_finds_a_member_by_email(database: Database, api: Api) -> None:
    member = make_member(database, api.programme, email="Lea.Martin@Example.com")
    response = api.get("/members/lookup?email=lea.martin@example.com", scope="read")
    assert response.status_code == 200
    assert response.json()["id"] == str(member.id)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 256, 900])
def test_deeply_nested_properties_are_refused(database: Database, api: Api, depth: int) -> None:
    member = make_member(database, api.programme)
    body = json.dumps(_event(member.id, properties={})).replace(
        '"properties": {}', '"properties": ' + '{"a": ' * depth + "{}" + "}" * depth
    )
    response = api.post(
        "/events", content=body, headers={"content-type": "application/json"}, scope="integration"
    )
    assert response.status_code == 422, response.text
    assert ["body", "properties"] in _field(response)
    assert "deeper" in response.json()["detail"]
    assert _events(database, api) == 0


def test_properties_at_the_depth_limit_are_accepted(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    response = api.post(
        "/events", json=_event(member.id, properties=_nested(MAX_JSON_DEPTH)), scope="integration"
    )
    assert response.status_code == 201, response.text
    assert _events(database, api) == 1


def test_one_nested_event_does_not_fail_its_batch(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    good, bad = _event(member.id), _event(member.id, properties=_nested(300))
    response = api.post("/events/batch", json={"events": [good, bad]}, scope="integration")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["fields"][0]["loc"] == ["properties"]
    assert _events(database, api) == 1


def test_deeply_nested_attributes_are_refused(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    response = api.patch(
        f"/members/{member.id}", json={"attributes": _nested(300)}, scope="integration"
    )
    assert response.status_code == 422
    assert ["body", "attributes"] in _field(response)
    assert api.get(f"/members/{member.id}").json()["attributes"] == {}


def test_free_text_beyond_the_size_limit_is_refused(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    review = {"text": "x" * (MAX_JSON_BYTES + 1)}
    response = api.post("/events", json=_event(member.id, properties=review), scope="integration")
    assert response.status_code == 422
    assert ["body", "properties"] in _field(response)
    assert _events(database, api) == 0


@pytest.fixture
def wallet_api(database: Database, api: Api) -> Api:
    with database.transaction() as session:
        wallets.ensure_default_wallets(session, programme=api.programme)
    return api


def _adjust(api: Api, member_id: uuid.UUID, amount: Any, **fields: Any) -> Any:
    body = {
        "member_id": str(member_id),
        "wallet": "points",
        "amount": amount,
        "reason": "goodwill",
        "actor": "support",
        "idempotency_key": uuid.uuid4().hex,
        **fields,
    }
    return api.post("/ledger/adjustments", json=body)


def _transactions(database: Database, api: Api) -> int:
    programme_id = api.programme.id
    return count_rows(database, LedgerTransaction, LedgerTransaction.programme_id == programme_id)


@pytest.mark.parametrize("amount", [2**63, 10**30, "6.9e189", -(2**63), MAX_POSTING + 1])
def test_an_amount_beyond_the_storage_range_is_refused(
    database: Database, wallet_api: Api, amount: Any
) -> None:
    member = make_member(database, wallet_api.programme)
    response = _adjust(wallet_api, member.id, amount)
    assert response.status_code == 422, response.text
    assert ["body", "amount"] in _field(response)
    assert _transactions(database, wallet_api) == 0


def test_a_balance_never_overflows(database: Database, wallet_api: Api) -> None:
    member = make_member(database, wallet_api.programme)
    for _ in range(MAX_BALANCE // MAX_POSTING):
        assert _adjust(wallet_api, member.id, MAX_POSTING).status_code == 201
    written = _transactions(database, wallet_api)
    response = _adjust(wallet_api, member.id, 1)
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "balance_limit"
    assert _transactions(database, wallet_api) == written
    balances = wallet_api.get(f"/members/{member.id}/wallets").json()
    assert {b["wallet"]: b["available"] for b in balances}["points"] == MAX_BALANCE


def test_a_naive_expiry_is_refused(database: Database, wallet_api: Api) -> None:
    member = make_member(database, wallet_api.programme)
    response = _adjust(wallet_api, member.id, 5, expires_at="2027-01-01T00:00:00")
    assert response.status_code == 422
    assert ["body", "expires_at"] in _field(response)
    assert "time zone" in response.json()["detail"]
    assert _transactions(database, wallet_api) == 0


@pytest.mark.parametrize(
    "as_of", ["2026-11-24T10:15:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
)
def test_a_bad_as_of_is_refused(database: Database, wallet_api: Api, as_of: str) -> None:
    member = make_member(database, wallet_api.programme)
    response = wallet_api.get(
        f"/members/{member.id}/wallets/points/balance", params={"as_of": as_of}
    )
    assert response.status_code == 422, response.text
    assert ["query", "as_of"] in _field(response)


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1899-12-31T23:59:59Z"],
)
def test_an_instant_out_of_range_is_refused(database: Database, api: Api, occurred_at: str) -> None:
    member = make_member(database, api.programme)
    response = api.post(
        "/events", json=_event(member.id, occurred_at=occurred_at), scope="integration"
    )
    assert response.status_code == 422
    assert ["body", "occurred_at"] in _field(response)
    assert "1900-01-01" in response.json()["detail"]
    assert _events(database, api) == 0


def test_the_edges_of_the_range_are_accepted(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    for occurred_at in ("1900-01-01T00:00:00Z", "2199-12-31T23:59:59Z"):
        response = api.post(
            "/events", json=_event(member.id, occurred_at=occurred_at), scope="integration"
        )
        assert response.status_code == 201, response.text


def test_a_birth_date_out_of_range_is_refused(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    response = api.patch(f"/members/{member.id}", json={"birth_date": "0001-01-01"})
    assert response.status_code == 422
    assert ["body", "birth_date"] in _field(response)


@pytest.mark.parametrize(
    ("where", "loc"),
    [
        ({"properties": {"text": "a\x00b"}}, ["body", "properties", "text"]),
        ({"properties": {"a\x00": 1}}, ["body", "properties"]),
        ({"id": "x\x00y"}, ["body", "id"]),
        ({"store": "s\x00"}, ["body", "store"]),
    ],
)
def test_a_nul_character_in_an_event_is_refused(
    database: Database, api: Api, where: dict[str, Any], loc: list[str]
) -> None:
    member = make_member(database, api.programme)
    response = api.post("/events", json=_event(member.id, **where), scope="integration")
    assert response.status_code == 422, response.text
    assert loc in _field(response)
    assert _events(database, api) == 0


def test_a_nul_character_in_a_name_a_path_or_a_query_is_refused(
    database: Database, api: Api
) -> None:
    member = make_member(database, api.programme)
    response = api.patch(f"/members/{member.id}", json={"first_name": "L\x00a"})
    assert response.status_code == 422
    assert ["body", "first_name"] in _field(response)
    assert api.get(f"/members/{member.id}").json()["first_name"] is None
    assert api.get("/events/abc%00def").status_code == 422
    assert api.get("/members/lookup?card=12%0034").status_code == 422
    assert api.get("/members/lookup", params={"card": "12\x0034"}).status_code == 422


def test_a_programme_document_with_a_nul_character_is_refused(api: Api) -> None:
    response = api.put("/programme", json={"name": "Earth\x00Care"})
    assert response.status_code == 422
    assert ["body", "name"] in _field(response)


def test_a_body_over_the_limit_is_a_413(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    review = {"text": "x" * (2 * 1024 * 1024)}
    response = api.post("/events", json=_event(member.id, properties=review), scope="integration")
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert _events(database, api) == 0


def test_a_streamed_body_over_the_limit_is_a_413(database: Database, api: Api) -> None:
    """No Content-Length: the limit is counted as the body arrives."""
    member = make_member(database, api.programme)
    body = json.dumps(_event(member.id, properties={"text": "x" * (2 * 1024 * 1024)})).encode()

    def chunks() -> Any:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = api.post(
        "/events",
        content=chunks(),
        headers={"content-type": "application/json"},
        scope="integration",
    )
    assert response.status_code == 413
    assert _events(database, api) == 0


def test_a_batch_may_be_larger_than_one_event(database: Database, api: Api) -> None:
    member = make_member(database, api.programme)
    events = [_event(member.id, properties={"text": "x" * 30_000}) for _ in range(40)]
    response = api.post("/events/batch", json={"events": events}, scope="integration")
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 40
    assert count_rows(database, Member, Member.programme_id == api.programme.id) == 1
