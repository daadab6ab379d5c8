"""API keys: every route needs a key of the right scope, of the right programme."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import ApiKey, Member, Programme
from tests.fixtures.factories import Api


def assert_error(response_json: dict[str, object], code: str) -> None:
    assert response_json["error"] == code
    assert isinstance(response_json["detail"], str)
    assert response_json["detail"]
    assert isinstance(response_json["fields"], list)


def test_a_call_without_a_key_is_401_in_the_error_shape(api: Api) -> None:
    response = api.get("/programme", key=None)

    assert response.status_code == 401
    assert_error(response.json(), "unauthorized")


def test_an_unknown_key_is_401(api: Api) -> None:
    response = api.get("/programme", key="fid_000000000000_not-a-real-key")

    assert response.status_code == 401
    assert_error(response.json(), "unauthorized")


def test_the_key_may_come_in_the_x_api_key_header(api: Api) -> None:
    response = api.get("/programme", key=None, headers={"X-API-Key": api.keys["read"]})

    assert response.status_code == 200
    assert response.json()["slug"] == api.programme.slug


def test_a_revoked_key_is_401(api: Api) -> None:
    created = api.post("/api-keys", json={"name": "till 3", "scope": "integration"}).json()
    assert api.get("/programme", key=created["key"]).status_code == 200

    revoked = api.delete(f"/api-keys/{created['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = api.get("/programme", key=created["key"])
    assert response.status_code == 401
    assert_error(response.json(), "unauthorized")


def test_revoking_twice_is_a_conflict_and_an_unknown_key_id_is_404(api: Api) -> None:
    created = api.post("/api-keys", json={"name": "x", "scope": "read"}).json()
    api.delete(f"/api-keys/{created['id']}")

    assert api.delete(f"/api-keys/{created['id']}").status_code == 409
    missing = api.delete("/api-keys/00000000-0000-7000-8000-000000000000")
    assert missing.status_code == 404
    assert_error(missing.json(), "not_found")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/members", {"email": "a@example.com"}),
        ("POST", "/events", {}),
        ("PATCH", "/programme", {"name": "x"}),
        ("POST", "/api-keys", {"name": "x", "scope": "read"}),
    ],
)
def test_a_read_key_on_a_write_route_is_403(api: Api, method: str, path: str, body: object) -> None:
    response = api.request(method, path, scope="read", json=body)

    assert response.status_code == 403
    assert_error(response.json(), "forbidden")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api-keys"), ("POST", "/api-keys"), ("DELETE", "/api-keys/{id}")],
)
def test_an_integration_key_cannot_manage_api_keys(
    api: Api, database: Database, method: str, path: str
) -> None:
    with database.transaction(readonly=True) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.programme_id == api.programme.id))
    body = {"name": "x", "scope": "admin"} if method == "POST" else None

    response = api.request(method, path.format(id=key_id), scope="integration", json=body)

    assert response.status_code == 403
    with database.transaction(readonly=True) as session:
        keys = session.scalars(select(ApiKey).where(ApiKey.programme_id == api.programme.id))
        assert all(k.revoked_at is None for k in keys)
    assert len(api.get("/api-keys").json()) == 3


def test_an_integration_key_can_enrol_and_send_events(api: Api) -> None:
    enrolled = api.post("/members", json={"email": "pos@example.com"}, scope="integration")

    assert enrolled.status_code == 201
    assert api.get("/members", scope="read").status_code == 200


def test_an_admin_creates_lists_and_revokes_keys(api: Api) -> None:
    created = api.post("/api-keys", json={"name": "POS Lyon", "scope": "integration"})

    assert created.status_code == 201
    body = created.json()
    assert body["scope"] == "integration"
    assert body["key"].startswith(f"fid_{body['prefix']}_")
    listed = api.get("/api-keys").json()
    assert [k["name"] for k in listed].count("POS Lyon") == 1
    assert all("key" not in k for k in listed)
    assert api.delete(f"/api-keys/{body['id']}").status_code == 200
    (mine,) = [k for k in api.get("/api-keys").json() if k["id"] == body["id"]]
    assert mine["revoked_at"] is not None


def test_the_secret_is_shown_once_and_only_its_digest_is_stored(
    api: Api, database: Database
) -> None:
    body = api.post("/api-keys", json={"name": "web shop", "scope": "integration"}).json()
    secret = body["key"]

    with database.transaction(readonly=True) as session:
        row = session.get(ApiKey, uuid.UUID(body["id"]))
        assert row is not None
        stored = [str(getattr(row, c.key)) for c in ApiKey.__table__.columns]
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in value for value in stored)
    assert all(secret.split("_", 2)[2] not in value for value in stored)
    assert secret not in api.get("/api-keys").text


def test_a_key_only_sees_its_own_programme(
    api_factory: Callable[[Programme], Api],
    programme_factory: Callable[..., Programme],
    database: Database,
) -> None:
    brand_a, brand_b = api_factory(programme_factory()), api_factory(programme_factory())
    member_b = brand_b.post("/members", json={"email": "b@example.com"}).json()

    assert brand_a.get(f"/members/{member_b['id']}").status_code == 404
    assert brand_a.get("/members/lookup", params={"email": "b@example.com"}).status_code == 404
    assert brand_a.get("/members").json()["items"] == []
    assert brand_a.patch(f"/members/{member_b['id']}", json={"first_name": "X"}).status_code == 404
    assert brand_a.get(f"/members/{member_b['id']}/events").status_code == 404
    assert brand_a.get("/programme").json()["id"] == str(brand_a.programme.id)
    with database.transaction(readonly=True) as session:
        member = session.get(Member, uuid.UUID(member_b["id"]))
        assert member is not None
        assert member.first_name is None


def test_an_admin_key_cannot_revoke_another_programmes_key(
    api_factory: Callable[[Programme], Api], programme_factory: Callable[..., Programme]
) -> None:
    brand_a, brand_b = api_factory(programme_factory()), api_factory(programme_factory())
    key_b = brand_b.post("/api-keys", json={"name": "b", "scope": "read"}).json()

    assert brand_a.delete(f"/api-keys/{key_b['id']}").status_code == 404
    assert brand_b.get("/programme", key=key_b["key"]).status_code == 200
