"""The OpenAPI document is what integrators read first (``/docs``): every operation says what
it does, its errors and the scope of key it needs, and every body has an example that the API
itself accepts (a fuzzer starts from these examples too)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from fidelia.api.app import API_PREFIX, create_app
from fidelia.auth.dependencies import Admin, GroupedIntegrator, Integrator, Reader
from fidelia.db import Database, make_engine
from fidelia.events.schemas import BUILT_IN_MODELS, EventIn, Purchase
from fidelia.intake.endpoints import EventBatch
from tests.fixtures.factories import Api

SCOPES = {
    get_args(annotated)[1].dependency: name
    for annotated, name in (
        (Reader, "read"),
        (Integrator, "integration"),
        (GroupedIntegrator, "integration"),
        (Admin, "admin"),
    )
}
DOC_URI = "https://fidelia.invalid/openapi.json"
METHODS = ("get", "put", "post", "patch", "delete")

Operation = tuple[str, str, dict[str, Any]]


# -- the document -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app's OpenAPI document (building it needs no table, so no migration either)."""
    path: Path = tmp_path_factory.mktemp("openapi") / "fidelia.db"
    database = Database(make_engine(f"sqlite:///{path}"))
    # Through JSON, as /openapi.json serves it (examples hold only JSON values).
    yield json.loads(json.dumps(create_app(database).openapi()))
    database.dispose()


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def has_example(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """An example on the schema, on the component it names, or on the items of its array."""
    schema = resolve(document, schema)
    if schema.get("examples"):
        return True
    return schema.get("type") == "array" and has_example(document, schema.get("items", {}))


def json_schemas(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema of the document that carries examples, with its JSON pointer."""
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list) and ("type" in node or "$ref" in node):
            yield pointer, node
        for key, child in node.items():
            if key in ("examples", "default"):
                continue  # data, not schemas
            yield from json_schemas(
                child, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            )
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from json_schemas(child, f"{pointer}/{i}")


def _aware_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value).tzinfo is not None


FORMATS = FormatChecker()
FORMATS.checks("date-time", raises=ValueError)(_aware_datetime)


def validator_at(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer``; its ``$ref`` resolve inside the document."""
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, DRAFT202012.create_resource(document)
    )
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#{pointer}"}, registry=registry, format_checker=FORMATS
    )


# -- the routes behind the operations ---------------------------------------------------------


def routes() -> dict[tuple[str, str], APIRoute]:
    """Every API route of the app, found through the routers it includes (so a new domain's
    router is covered without being listed here)."""
    found: dict[tuple[str, str], APIRoute] = {}
    app = create_app(Database(make_engine("sqlite://")))
    pending: list[tuple[str, Any]] = [("", app.router)]
    while pending:
        prefix, router = pending.pop()
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods:
                    found[(method.lower(), prefix + route.path)] = route
            elif hasattr(route, "original_router"):
                pending.append((prefix + route.include_context.prefix, route.original_router))
    return found


def scope_of(route: APIRoute) -> str | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call in SCOPES:
            return SCOPES[dependency.call]
        pending.extend(dependency.dependencies)
    return None


def models_of(annotation: Any) -> Iterator[type[BaseModel]]:
    """The Pydantic models an annotation names: ``X``, ``list[X]``, ``Page[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif get_origin(annotation) is list:
        yield from models_of(get_args(annotation)[0])


def examples_of(model: type[BaseModel]) -> list[Any]:
    schema = model.model_json_schema(mode="validation")
    return list(schema.get("examples", []))


# -- operations -------------------------------------------------------------------------------


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}: {field}"
        for method, path, op in operations(document)
        for field in ("summary", "description")
        if not str(op.get(field, "")).strip()
    ]

    assert missing == []


def test_every_description_names_the_scope_the_call_needs(document: dict[str, Any]) -> None:
    by_operation = routes()
    wrong = []
    for method, path, op in operations(document):
        route = by_operation.get((method, path))
        assert route is not None, f"no route found for {method.upper()} {path}"
        stated = re.findall(r"Scope: `(read|integration|admin)`", op.get("description", ""))
        signed = re.search(r"no(t with an)? API key", op.get("description", ""))
        if scope_of(route) is None and not stated and signed:
            continue  # a provider's webhook: authenticated by its signature, and it says so
        if stated != [scope_of(route)]:
            wrong.append(f"{method.upper()} {path}: says {stated}, needs {scope_of(route)}")

    assert wrong == []


def test_every_operation_id_is_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]

    assert len(ids) == len(set(ids))


# -- examples exist ---------------------------------------------------------------------------


def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for method, path, op in operations(document)
        if "requestBody" in op
        for media in op["requestBody"]["content"].values()
        if not has_example(document, media["schema"])
    ]

    assert missing == []


def test_every_success_response_has_an_example(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path} {status}"
        for method, path, op in operations(document)
        for status, response in op["responses"].items()
        if status.startswith("2")
        for media in response.get("content", {}).values()
        if not has_example(document, media["schema"])
    ]

    assert missing == []


def test_every_component_object_has_an_example(document: dict[str, Any]) -> None:
    """Nested shapes too (a purchase line, a policy, an error field), and the error body."""
    schemas = document["components"]["schemas"]
    missing = [
        name
        for name, schema in schemas.items()
        if schema.get("type") == "object" and not schema.get("examples")
    ]

    assert missing == []
    assert schemas["ErrorOut"]["examples"][0]["fields"][0]["loc"][0] == "body"


def test_every_error_status_is_documented_with_the_error_shape(document: dict[str, Any]) -> None:
    wrong = [
        f"{method.upper()} {path} {status}"
        for method, path, op in operations(document)
        for status, response in op["responses"].items()
        if status[0] in "45"
        if response.get("content", {}).get("application/json", {}).get("schema")
        != {"$ref": "#/components/schemas/ErrorOut"}
    ]

    assert wrong == []


# -- examples are valid -----------------------------------------------------------------------


def test_every_example_validates_against_its_own_schema(document: dict[str, Any]) -> None:
    found = list(json_schemas(document))
    errors = [
        f"{pointer} example {i}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for pointer, schema in found
        for i, example in enumerate(schema["examples"])
        for error in validator_at(document, pointer).iter_errors(example)
    ]

    assert len(found) >= len(document["components"]["schemas"]) - 1  # all but the Scope enum
    assert errors == []


def _check_event(event: dict[str, Any]) -> None:
    """The intake validates an event in two steps: the envelope, then its typed properties."""
    parsed = EventIn.model_validate(event)
    model = BUILT_IN_MODELS.get(parsed.type)
    if model is None:
        return
    properties = model.model_validate(parsed.properties)
    if isinstance(properties, Purchase):
        lines = sum((line.amount for line in properties.lines), Decimal(0))
        assert properties.total == lines + properties.shipping, "the total is not the lines"


REQUEST_CHECKS: dict[type[BaseModel], Callable[[Any], None]] = {
    EventIn: _check_event,
    EventBatch: lambda batch: [_check_event(e) for e in batch["events"]],
}


def test_request_examples_are_accepted_by_the_models_the_api_validates_with() -> None:
    checked = 0
    for route in routes().values():
        body = route.body_field
        if body is None:
            continue
        for model in models_of(body.field_info.annotation):
            examples = examples_of(model)
            for example in examples:
                model.model_validate(example)
                REQUEST_CHECKS.get(model, lambda _: None)(example)
                checked += 1

    assert checked >= 30


def test_a_purchase_example_totals_its_lines() -> None:
    purchases = [e for e in examples_of(EventIn) if e["type"] == "purchase"]

    assert purchases
    for event in purchases:
        _check_event(event)


def test_the_programme_document_example_applies(document: dict[str, Any], api: Api) -> None:
    """The example of ``PUT /programme/document`` passes the whole check, rules compiled."""
    body = document["paths"][f"{API_PREFIX}/programme/document"]["put"]["requestBody"]
    (example,) = body["content"]["application/json"]["schema"]["examples"]

    response = api.put("/programme/document", params={"dry_run": True}, json=example)

    assert response.status_code == 200, response.json()
    assert response.json()["changed"] is True


def test_the_nulls_of_examples_survive_the_document(document: dict[str, Any]) -> None:
    """FastAPI drops every null of an example while encoding the document; the app puts back
    those a schema requires (a key never revoked, a voucher without an end...)."""
    schemas = document["components"]["schemas"]
    (key, _) = schemas["ApiKeyOut"]["examples"]
    (redemption,) = schemas["RedemptionOut"]["examples"]

    assert key["revoked_at"] is None
    assert redemption["voucher"]["valid_from"] is None
    assert redemption["cancelled_at"] is None
