"""Rate limits per key and route class (429 + Retry-After, nothing written), API key expiry,
last use and rotation, security headers, CORS per programme, the body size limit, and the
audit of every API write."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import ApiKey, Member, Programme
from tests.fixtures.factories import Api, count_rows, unique_email


@pytest.fixture
def api(api_factory: Callable[[Programme], Api], programme: Programme) -> Api:
    return api_factory(programme)


def _limits(api: Api, **classes: dict[str, float]) -> None:
    response = api.patch("/programme", json={"settings": {"api": {"rate_limits": classes}}})
    assert response.status_code == 200, response.text


def _members(database: Database, api: Api) -> int:
    return count_rows(database, Member, Member.programme_id == api.programme.id)


# -- rate limits --------------------------------------------------------------------------------


def test_a_key_over_its_write_limit_gets_429_with_retry_after_and_writes_nothing(
    api: Api, database: Database
) -> None:
    _limits(api, write={"per_second": 0.01, "burst": 2})
    body = lambda: {"email": unique_email()}  # noqa: E731

    answers = [api.post("/members", json=body(), scope="integration") for _ in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    refused = answers[2]
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert "write" in refused.json()["detail"]
    assert _members(database, api) == 2
    # another key of the programme has its own bucket; reads are another class
    assert api.get("/programme", scope="integration").status_code == 200


def test_the_bucket_refills_with_time(api: Api) -> None:
    _limits(api, read={"per_second": 50, "burst": 1})

    first = api.get("/programme", scope="read")
    time.sleep(0.1)
    second = api.get("/programme", scope="read")

    assert (first.status_code, second.status_code) == (200, 200)


def test_a_class_left_out_is_not_limited_and_limits_are_checked(api: Api) -> None:
    _limits(api, write={"per_second": 1, "burst": 1})
    assert all(api.get("/programme", scope="read").status_code == 200 for _ in range(5))

    bad = api.patch(
        "/programme",
        json={"settings": {"api": {"rate_limits": {"read": {"per_second": 0, "burst": 1}}}}},
    )
    assert bad.status_code == 422
    assert "per_second" in bad.text


# -- API keys: expiry, last use, rotation ------------------------------------------------------


def test_a_key_with_an_expiry_is_refused_after_it(api: Api) -> None:
    past = api.post(
        "/api-keys",
        json={"name": "old", "scope": "read", "expires_at": "2020-01-01T00:00:00Z"},
    )
    soon = datetime.now(UTC) + timedelta(days=1)
    made = api.post(
        "/api-keys", json={"name": "temp", "scope": "read", "expires_at": soon.isoformat()}
    )

    assert past.status_code == 422
    assert "expires_at" in past.text
    assert made.status_code == 201, made.text
    assert api.get("/programme", key=made.json()["key"]).status_code == 200


def test_rotation_gives_a_new_key_and_the_old_one_works_during_the_grace(
    api: Api, database: Database
) -> None:
    made = api.post("/api-keys", json={"name": "till 4", "scope": "integration"}).json()

    rotated = api.post(f"/api-keys/{made['id']}/rotate", json={"grace_hours": 1})

    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert (new["name"], new["scope"]) == ("till 4", "integration")
    assert new["key"] != made["key"]
    assert api.get("/programme", key=new["key"]).status_code == 200
    assert api.get("/programme", key=made["key"]).status_code == 200
    keys = {k["id"]: k for k in api.get("/api-keys").json()}
    assert keys[made["id"]]["replaced_by_id"] == new["id"]
    assert keys[made["id"]]["expires_at"] is not None
    again = api.post(f"/api-keys/{made['id']}/rotate", json={})
    assert again.status_code == 409
    # grace over: the old key is refused, saying why
    with database.transaction() as session:
        key = session.get(ApiKey, uuid.UUID(made["id"]))
        assert key is not None
        key.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    refused = api.get("/programme", key=made["key"])
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


def test_rotating_an_unknown_key_is_404(api: Api) -> None:
    assert api.post(f"/api-keys/{uuid.uuid4()}/rotate", json={}).status_code == 404


def test_last_used_is_written_once_not_per_request(api: Api, database: Database) -> None:
    made = api.post("/api-keys", json={"name": "probe", "scope": "read"}).json()
    assert api.get("/api-keys").json()[-1]["last_used_at"] is None

    for _ in range(3):
        assert api.get("/programme", key=made["key"]).status_code == 200

    with database.transaction(readonly=True) as session:
        first = session.scalar(
            select(ApiKey.last_used_at).where(ApiKey.id == uuid.UUID(made["id"]))
        )
    assert first is not None
    assert datetime.now(UTC) - first < timedelta(minutes=1)
    api.get("/programme", key=made["key"])
    with database.transaction(readonly=True) as session:
        again = session.scalar(
            select(ApiKey.last_used_at).where(ApiKey.id == uuid.UUID(made["id"]))
        )
    assert again == first, "not rewritten within the minute"


# -- headers, CORS, body size -----------------------------------------------------------------


def test_security_headers_on_answers_and_errors(api: Api) -> None:
    for response in (api.get("/programme"), api.get("/programme", key=None), api.get("/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "max-age" in response.headers["strict-transport-security"]


def test_cors_for_an_origin_the_programme_allows_only(
    api: Api, api_factory: Callable[[Programme], Api], programme_factory: Callable[..., Programme]
) -> None:
    portal = "https://club.example.com"
    changed = api.patch("/programme", json={"settings": {"api": {"cors_origins": [portal]}}})
    assert changed.status_code == 200, changed.text
    other = api_factory(programme_factory())

    preflight = api.client.options(
        "/api/v1/programme",
        headers={"Origin": portal, "Access-Control-Request-Method": "GET"},
    )
    allowed = api.get("/programme", headers={"Origin": portal})
    stranger = api.get("/programme", headers={"Origin": "https://evil.example.net"})
    borrowed = other.get("/programme", headers={"Origin": portal})

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == portal
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == portal
    assert stranger.status_code == 403
    assert "access-control-allow-origin" not in stranger.headers
    assert borrowed.status_code == 403, "another programme's key from that portal host"


def test_bad_cors_origins_are_refused(api: Api) -> None:
    response = api.patch(
        "/programme", json={"settings": {"api": {"cors_origins": ["http://club.example.com"]}}}
    )

    assert response.status_code == 422
    assert "cors_origins" in response.text


def test_a_body_over_the_limit_is_413(api: Api, database: Database) -> None:
    big = {"email": unique_email(), "attributes": {"blob": "x" * (2 * 1024 * 1024)}}

    response = api.post("/members", json=big, scope="integration")

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert _members(database, api) == 0


# -- audit ------------------------------------------------------------------------------------


def test_every_api_write_is_audited_without_secrets(api: Api) -> None:
    created = api.post("/members", json={"email": "aud@example.com"}, scope="integration")
    member_id = created.json()["id"]
    api.patch(f"/members/{member_id}", json={"first_name": "Zoe"}, scope="integration")
    api.post("/api-keys", json={"name": "k", "scope": "read"})
    api.get(f"/members/{member_id}", scope="read")  # a read: not audited
    api.post(f"/members/{member_id}/erase", scope="integration")  # refused: not audited

    page = api.get("/audit", params={"target_type": "members"}).json()
    actions = [(e["action"], e["target_id"]) for e in page["items"]]
    assert ("PATCH /members/{member_id}", member_id) in actions
    assert ("POST /members", "") in actions
    assert not any("erase" in a for a, _ in actions)
    patch = next(e for e in page["items"] if e["action"].startswith("PATCH"))
    assert patch["after"] == {"first_name": "Zoe"}
    assert patch["actor"].startswith("api_key:")
    keys = api.get("/audit", params={"action": "POST /api-keys"}).json()["items"]
    assert len(keys) == 1
    by_actor = api.get("/audit", params={"actor": patch["actor"]}).json()["items"]
    assert {e["actor"] for e in by_actor} == {patch["actor"]}


def test_secret_fields_of_a_body_are_redacted() -> None:
    from fidelia.audit.requests import summary

    found = summary(
        b'{"url": "https://x", "secret": "s3", "auth": {"password": "p", "token": "t"}}',
        "application/json",
    )

    assert found == {
        "url": "https://x",
        "secret": "[redacted]",
        "auth": {"password": "[redacted]", "token": "[redacted]"},
    }


def test_the_audit_log_needs_admin(api: Api) -> None:
    assert api.get("/audit", scope="integration").status_code == 403
