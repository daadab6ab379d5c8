"""One JSON error shape for every error; never a stack trace."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fidelia.api.app import create_app
from fidelia.db import Database
from fidelia.models import Member
from tests.fixtures.factories import Api, count_rows


def test_a_validation_error_is_422_and_names_the_field_path(api: Api) -> None:
    response = api.post("/members", json={"email": "a@example.com", "channel": "pigeon"})

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert ["body", "channel"] in [f["loc"] for f in body["fields"]]
    assert "channel" in body["detail"]


def test_a_nested_invalid_field_is_named_by_its_whole_path(api: Api) -> None:
    response = api.post(
        "/members", json={"email": "a@example.com", "external_ids": [{"namespace": "shop"}]}
    )

    assert response.status_code == 422
    assert ["body", "external_ids", 0, "value"] in [f["loc"] for f in response.json()["fields"]]


def test_an_invalid_identity_is_422_naming_the_field(api: Api, database: Database) -> None:
    response = api.post("/members", json={"email": "not an email", "card": "123"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "email"]
    assert count_rows(database, Member, Member.programme_id == api.programme.id) == 0


def test_an_unknown_id_is_404(api: Api) -> None:
    response = api.get("/members/00000000-0000-7000-8000-000000000000")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_malformed_id_is_422(api: Api) -> None:
    response = api.get("/members/not-a-uuid")

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["path", "member_id"]


def test_a_conflict_is_409(api: Api) -> None:
    api.post("/members", json={"card": "C-1"})

    response = api.post("/members", json={"card": "C-1"})

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_an_unknown_route_is_404_in_the_same_shape(api: Api) -> None:
    response = api.get("/no-such-thing")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not Found", "fields": []}


def test_a_wrong_method_is_405_in_the_same_shape(api: Api) -> None:
    response = api.delete("/programme")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_a_405_lists_the_allowed_methods(api: Api) -> None:
    # found by the API fuzz: the error handler dropped the Allow header RFC 9110 requires
    # (Starlette names the methods of the first route of the path only: one route here)
    response = api.request("TRACE", "/programme/versions")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_an_unexpected_exception_is_500_without_a_traceback(database: Database) -> None:
    app = create_app(database)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")

    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error"
    assert set(body) == {"error", "detail", "fields"}
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


def test_the_error_shape_is_documented_in_openapi(database: Database) -> None:
    with TestClient(create_app(database)) as client:
        spec = client.get("/openapi.json").json()

    responses = spec["paths"]["/api/v1/members"]["post"]["responses"]
    for status in (400, 401, 403, 404, 409, 413, 422):
        assert responses[str(status)]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorOut"
        }
    assert set(spec["components"]["schemas"]["ErrorOut"]["properties"]) == {
        "error",
        "detail",
        "fields",
    }


def test_a_body_that_is_not_utf8_is_a_declared_400_in_the_same_shape(api: Api) -> None:
    # found by the fuzz (tests/api/test_fuzz.py): FastAPI answers 400, which was undeclared
    response = api.post("/members", content=b"\x80", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "detail": "There was an error parsing the body",
        "fields": [],
    }
