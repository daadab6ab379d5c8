"""Property-based tests of the whole API from its OpenAPI document (schemathesis).

Every operation of the document is called with generated requests, valid and invalid, with the
admin key of a programme that runs the demo programme document and holds members, events,
ledger transactions, redemptions and vouchers. Now and then a path parameter, a lookup query or
an id in a body names one of those real objects, so that calls get past the 404 and into the
services. Generation never sees the objects themselves: it draws placeholders (``@member:1``)
that the test resolves just before the call, so that the requests depend on the seed alone.

Each operation is its own test, on SQLite and on PostgreSQL, with a world of its own (a fresh
programme): a test depends only on its seed, never on which tests ran before it on its worker,
and ``pytest -n`` spreads the operations over the workers.

Checks: no 5xx (``not_a_server_error``); every response matches the schema its status code
declares (``response_schema_conformance``: errors too, in the one ``ErrorOut`` shape), with a
declared status code, content type and headers; a method the path does not have is a 405 with
``Allow`` (``unsupported_method``); an operation that answered 2xx refuses the same call
without a key or with a wrong one (``ignored_auth``). Left out: ``positive_data_acceptance`` and
``negative_data_rejection``, which judge whether a 4xx was deserved: the API is stricter than
JSON Schema can say (an existing tier, a locale, a date range, digits of a decimal), so the
first fails on correct answers; the second only finds that a query date-time may be a number
(pydantic reads it as Unix time). The stateful phase is off: the document declares no links.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from fidelia.api.app import create_app
from fidelia.db import Database, make_engine
from fidelia.rules.demo import programme_document
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import Api, make_keys, make_programme, unique_email

# Fuzzing examples per operation (the examples and coverage phases add their own, a few dozen);
# FIDELIA_FUZZ_EXAMPLES=500 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("FIDELIA_FUZZ_EXAMPLES", "25"))
# Generating voucher codes costs about 0.1 ms a code: the 100,000 a call may ask for are
# seconds per example, time better spent elsewhere (the bench measures large pools).
GENERATE_CAP = 500

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # the admin key goes with every call; a random key only ever meets the 401
            "with-security-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "unsupported_method": {"enabled": True},
            "ignored_auth": {"enabled": True},
        },
        "request-timeout": 60,
        "operations": [
            {
                # another method on /members/lookup is a call on the member whose id is
                # 'lookup' (/members/{member_id}): 422, rightly, where the check wants a 405
                "include-path": "/api/v1/members/lookup",
                "checks": {"unsupported_method": {"enabled": False}},
            },
            {  # the same for /members/duplicates
                "include-path": "/api/v1/members/duplicates",
                "checks": {"unsupported_method": {"enabled": False}},
            },
        ],
    }
)

# Only the document is read from this app: its database is never connected to.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Database(make_engine("sqlite://"))), config=CONFIG
)

# What the demo programme document names: static, usable as they are.
WALLETS = ["points", "cashback", "status"]
POOLS = ["welcome", "bon-10"]
REWARD_CODES = ["voucher-10-eur", "tote-bag", "repair-workshop", "donation-planete-verte"]
EVENT_TYPES = ["purchase", "review", "recycling_drop_off"]
TIERS = ["bronze", "silver", "gold"]
CARD, PHONE, EXTERNAL = "C-RICH-1", "+33612345678", ("shop", "S-1")


def _refs(kind: str, count: int = 2) -> list[str]:
    return [f"@{kind}:{index}" for index in range(count)]


PATH_HINTS: dict[str, list[Any]] = {
    "member_id": _refs("member"),
    "event_id": _refs("event"),
    "transaction_id": _refs("transaction"),
    "reward_id": _refs("reward", 3),
    "redemption_id": _refs("redemption"),
    "key_id": _refs("key", 1),
    "version": [1, 2],
    "name": EVENT_TYPES,
}
LOOKUPS: list[dict[str, Any]] = [
    {"email": "@email:0"},
    {"card": CARD},
    {"phone": PHONE},
    {"namespace": EXTERNAL[0], "external_id": EXTERNAL[1]},
]
BODY_HINTS: dict[str, list[Any]] = {
    "member_id": _refs("member"),
    "from_member_id": _refs("member"),
    "to_member_id": _refs("member"),
    "member": [{"id": ref} for ref in _refs("member")],
    "wallet": WALLETS[:2],
    "reward": REWARD_CODES,
    "tier": TIERS,
    "amount": ["25", "-5"],
}
_REF = re.compile(r"@([a-z]+):(\d+)")


@dataclass
class World:
    """One test's programme: its admin key and the real objects placeholders name."""

    admin_key: str
    objects: dict[str, list[str]]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str) and (found := _REF.fullmatch(value)):
            kind, index = found.group(1), int(found.group(2))
            choices = self.objects[kind]
            return choices[index % len(choices)]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _adjust(api: Api, member_id: str, amount: str, key: str) -> dict[str, Any]:
    body = {"member_id": member_id, "wallet": "points", "amount": amount}
    body |= {"reason": "seed", "actor": "seed", "idempotency_key": key}
    return _created(api.post("/ledger/adjustments", json=body))


def _seed(database: Database, client: TestClient) -> World:
    programme = make_programme(database)
    api = Api(client, programme, make_keys(database, programme))
    _created(api.put("/programme/document", json=programme_document()))

    rich_email = unique_email()
    rich = _created(api.post("/members", json={"email": rich_email, "card": CARD}))
    poor = {"email": unique_email(), "phone": PHONE}
    poor |= {"external_ids": [{"namespace": EXTERNAL[0], "value": EXTERNAL[1]}]}
    poor = _created(api.post("/members", json=poor))
    members = [rich["id"], poor["id"]]

    basket = [line("tee", 4, "150.00", category="tops")]
    earned = _created(api.post("/events", json=purchase({"id": rich["id"]}, lines=basket)))
    granted = _adjust(api, rich["id"], "2000", "seed-1")
    adjusted = _adjust(api, poor["id"], "50", "seed-2")

    redemptions = [
        _created(
            api.post(
                f"/members/{rich['id']}/redemptions",
                json={"reward": reward, "idempotency_key": f"seed-{reward}"},
            )
        )
        for reward in ("voucher-10-eur", "tote-bag")
    ]
    issued = _created(
        api.post(
            "/voucher-pools/welcome/issue",
            json={"member_id": poor["id"], "idempotency_key": "seed-3", "actor": "seed"},
        )
    )
    vouchers = [issued["code"]] + [r["voucher"]["code"] for r in redemptions if r["voucher"]]
    spare_key = _created(api.post("/api-keys", json={"name": "spare", "scope": "read"}))
    return World(
        admin_key=api.keys["admin"],
        objects={
            "member": members,
            "email": [rich_email],
            "event": [earned["id"], earned["event_id"]],
            "transaction": [granted["id"], adjusted["id"]],
            "reward": [r["id"] for r in api.get("/rewards").json()],
            "redemption": [r["id"] for r in redemptions],
            "voucher": vouchers,
            "key": [spare_key["id"]],
        },
    )


@pytest.fixture(scope="session")
def fuzz_app(database: Database) -> FastAPI:
    return create_app(database)


@pytest.fixture
def world(database: Database, fuzz_app: FastAPI) -> World:
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:
        return _seed(database, client)


def _path_hints(path: str, name: str) -> list[Any]:
    if name == "code":
        return POOLS if path.startswith("/api/v1/voucher-pools") else WALLETS
    return PATH_HINTS.get(name, [])


def _one_of(value: Any, hints: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from([value, *hints]) if hints else st.just(value)


@schema.hook
def flatmap_path_parameters(
    ctx: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[Any]:
    """Each parameter is the generated value or one naming a real object."""
    if not path_parameters:
        return st.just(path_parameters)
    assert ctx.operation is not None
    path = ctx.operation.path
    return st.fixed_dictionaries(
        {name: _one_of(value, _path_hints(path, name)) for name, value in path_parameters.items()}
    )


@schema.hook
def flatmap_query(
    ctx: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[Any]:
    """A lookup is the generated query or one naming a real member's identity."""
    assert ctx.operation is not None
    if ctx.operation.path.endswith("/members/lookup"):
        return _one_of(query, LOOKUPS)
    return st.just(query)


def _body_hints(path: str, name: str) -> list[Any]:
    if name == "code" and path.startswith("/api/v1/vouchers/"):
        return _refs("voucher", 3)
    if name == "type" and path.startswith("/api/v1/events"):
        return EVENT_TYPES
    return BODY_HINTS.get(name, [])


def _hinted(path: str, body: Any) -> st.SearchStrategy[Any]:
    if isinstance(body, list):
        return st.tuples(*(_hinted(path, item) for item in body)).map(list)
    if not isinstance(body, dict):
        return st.just(body)
    return st.fixed_dictionaries(
        {
            name: _hinted(path, value) if name == "events" else _one_of(value, hints)
            for name, value in body.items()
            for hints in [_body_hints(path, name)]
        }
    )


@schema.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """The ids, codes and names a body holds are the generated ones or real ones."""
    assert ctx.operation is not None
    return _hinted(ctx.operation.path, body)


def _prepare(case: schemathesis.Case, world: World) -> None:
    """Resolve the placeholders (in every phase: some do not run the hooks) and cap the
    number of codes to generate."""
    if case.path_parameters:
        case.path_parameters = world.resolve(case.path_parameters)
    if case.query:
        case.query = world.resolve(case.query)
    if isinstance(case.body, dict | list):
        case.body = world.resolve(case.body)
    if case.operation.path.endswith("/generate") and isinstance(case.body, dict):
        count = case.body.get("count")
        if isinstance(count, int | float) and not isinstance(count, bool) and count > GENERATE_CAP:
            case.body = {**case.body, "count": GENERATE_CAP}


@schema.parametrize()
@hypothesis.settings(
    deadline=timedelta(seconds=10),
    derandomize=True,
    database=None,
    # one world per operation, on purpose: its examples share it as a client's calls would
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_the_api_honours_its_document(
    case: schemathesis.Case, world: World, fuzz_app: FastAPI
) -> None:
    _prepare(case, world)
    case.call_and_validate(app=fuzz_app, headers={"Authorization": f"Bearer {world.admin_key}"})


def test_placeholders_name_real_objects(world: World) -> None:
    assert world.resolve({"a": ["@member:3", "@key:0"], "b": "@member"}) == {
        "a": [world.objects["member"][1], world.objects["key"][0]],
        "b": "@member",
    }
    assert all(world.objects.values())


def test_every_operation_of_the_document_is_fuzzed() -> None:
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 60
    assert {"member_id", "code", "reward_id"} <= {
        p.name for op in operations for p in op.path_parameters
    }
