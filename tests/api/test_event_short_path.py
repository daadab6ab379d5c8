"""``POST /events`` answers a plain JSON event on a short path (issue 18): the same answers as
FastAPI's general path, which a body sent with another content type still takes.

``application/json`` takes the short path; ``application/json; charset=utf-8`` is the same
JSON to FastAPI but goes through its dependency solving, body field and response model.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from fidelia.db import Database
from fidelia.models import Event
from tests.fixtures.events import purchase
from tests.fixtures.factories import Api, count_rows, make_member

CARD = {"card": "C-1"}

SHORT = "application/json"
GENERAL = "application/json; charset=utf-8"


def _post(api: Api, body: bytes, content_type: str, **kwargs: Any) -> httpx.Response:
    headers = {"Content-Type": content_type}
    return api.post("/events", content=body, headers=headers, scope="integration", **kwargs)


def _answer(response: httpx.Response) -> tuple[int, Any, str | None]:
    return response.status_code, response.json(), response.headers.get("content-type")


def test_an_accepted_event_and_its_resend_answer_alike_on_both_paths(
    api: Api, database: Database
) -> None:
    make_member(database, api.programme, card="C-1")
    first = json.dumps(purchase(CARD, id="e-1", order_id="o-1")).encode()
    second = json.dumps(purchase(CARD, id="e-2", order_id="o-2")).encode()

    short, general_resend = _post(api, first, SHORT), _post(api, first, GENERAL)
    general, short_resend = _post(api, second, GENERAL), _post(api, second, SHORT)

    assert (short.status_code, general.status_code) == (201, 201)
    assert (short_resend.status_code, general_resend.status_code) == (200, 200)
    assert short.headers["content-type"] == general.headers["content-type"] == "application/json"
    assert short.json() == {**general_resend.json(), "status": "accepted"}
    assert short_resend.json() == {**general.json(), "status": "duplicate"}
    assert short.json()["index"] is None
    assert count_rows(database, Event, Event.programme_id == api.programme.id) == 2


REFUSED: dict[str, bytes] = {
    "not json": b'{"id": "e-1", ',
    "empty": b"",
    "a list": b"[]",
    "a missing field": json.dumps({"id": "e-1", "type": "purchase"}).encode(),
    "an unknown field": json.dumps({**purchase(CARD, id="e-1"), "colour": "red"}).encode(),
    "a date-time without offset": json.dumps(
        {**purchase(CARD, id="e-1"), "occurred_at": "2024-05-17T11:42:00"}
    ).encode(),
    "a lone surrogate": json.dumps({**purchase(CARD, id="e-1"), "store": "\ud800"}).encode(),
    "not UTF-8": b'{"id": "\xff"}',
    "an unknown member": json.dumps(purchase({"card": "NOBODY"}, id="e-1")).encode(),
}


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_event_has_the_same_answer_on_both_paths(
    api: Api, database: Database, body: bytes
) -> None:
    make_member(database, api.programme, card="C-1")

    assert _answer(_post(api, body, SHORT)) == _answer(_post(api, body, GENERAL))
    assert count_rows(database, Event, Event.programme_id == api.programme.id) == 0


KEYS: dict[str, dict[str, Any]] = {
    "no key": {"key": None},
    "an unknown key": {"key": "fid_nope_nope"},
    "a read key": {"scope": "read"},
}


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize("body", ["valid", "invalid", "not json"])
def test_a_refused_key_has_the_same_answer_on_both_paths(
    api: Api, database: Database, key: dict[str, Any], body: str
) -> None:
    make_member(database, api.programme, card="C-1")
    sent = {
        "valid": json.dumps(purchase(CARD, id="e-1")).encode(),
        "invalid": json.dumps({"id": "e-1"}).encode(),
        "not json": b"{",
    }[body]

    def post(content_type: str) -> httpx.Response:
        headers = {"Content-Type": content_type}
        return api.request("POST", "/events", content=sent, headers=headers, **key)

    short, general = post(SHORT), post(GENERAL)

    assert _answer(short) == _answer(general)
    assert short.status_code in (401, 403, 422)
    assert count_rows(database, Event, Event.programme_id == api.programme.id) == 0


def test_the_openapi_document_describes_the_body_the_answers_and_the_key(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/events"]["post"]

    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EventIn"}
    for status in ("200", "201"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/EventOutcome"}
    assert {"401", "403", "409", "422"} <= set(operation["responses"])
    assert {next(iter(s)) for s in operation["security"]} == {"HTTPBearer", "APIKeyHeader"}
