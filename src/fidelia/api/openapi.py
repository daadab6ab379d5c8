"""The OpenAPI document as FastAPI builds it, with the nulls of its examples put back.

FastAPI encodes the whole document with ``exclude_none``, which also drops every ``null`` inside
the examples (fastapi/fastapi#5559): a response example loses its required nullable properties
(``"revoked_at": null``) and no longer matches its own schema. A property the schema requires
and allows to be null, missing from an example, was null there: it is put back. (Nulls inside
free-form objects, whose schema names no property, stay lost.)
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

Json = dict[str, Any]
_BRANCHES = ("anyOf", "oneOf", "allOf")

DESCRIPTION = """Customer loyalty and engagement platform: members, events, points, tiers,
rewards, vouchers, badges and challenges.

**Authentication.** Every call carries an API key of the programme:
`Authorization: Bearer <key>` (or `X-API-Key: <key>`). A key has one scope, and each scope
includes the ones before it: `read` (look), `integration` (what a till, a web shop or an app
does: enrol, send events, redeem, use vouchers) and `admin` (configure the programme, correct
the ledger, manage keys). Each operation says the scope it needs. A missing, unknown or revoked
key is a 401; a key of a lower scope is a 403.

**Errors.** Every error has one shape, `{"error", "detail", "fields"}`: `error` is a stable code
(`validation_error`, `not_found`, `conflict`, ...), `fields` names the path of each invalid
field (`["body", "occurred_at"]`). 422: invalid input; 404: unknown id or code; 409: conflict
with the current state. A refused call changes nothing.

**Retries.** A write a client may have to retry carries a key the client chooses, so that it
is never applied twice. An event's `id`, a redemption's `idempotency_key` and a till use's
`order_id`, sent again, answer the first result (200 instead of 201) and change nothing; the
same key with other content is a 409. A ledger operation's `idempotency_key` used again is a
409 `already_posted`. Each operation says which applies.

**Values.** Date-times carry an offset (`2026-11-14T16:42:10+01:00`); the API answers in UTC
(`Z`). Money is a decimal string in the programme currency (`"24.90"`); points are integers.
Lists are paged by an opaque `cursor`: pass the `next_cursor` of a page to get the next one.
"""


class FideliaAPI(FastAPI):
    def openapi(self) -> Json:
        document = super().openapi()
        restore_nulls(document)  # idempotent: the document is cached and served again
        return document


def restore_nulls(document: Json) -> None:
    """Put back, in every example of ``document``, the null properties FastAPI dropped."""
    schemas: Json = document.get("components", {}).get("schemas", {})
    for schema, example in _examples(document):
        _fill(example, schema, schemas)


def _examples(node: Any) -> list[tuple[Json, Any]]:
    """Every (schema, example) of the document: schema examples and media type examples."""
    found: list[tuple[Json, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
            continue
        if not isinstance(current, dict):
            continue
        if isinstance(current.get("examples"), list):
            found.extend((current, example) for example in current["examples"])
        if isinstance(current.get("schema"), dict) and "example" in current:
            found.append((current["schema"], current["example"]))
        stack.extend(v for k, v in current.items() if k not in ("examples", "example", "default"))
    return found


def _resolve(schema: Json, schemas: Json) -> Json:
    seen = 0
    while "$ref" in schema and seen < 32:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        seen += 1
    return schema


def _nullable(schema: Json, schemas: Json) -> bool:
    schema = _resolve(schema, schemas)
    if schema.get("type") == "null" or (
        isinstance(schema.get("type"), list) and "null" in schema["type"]
    ):
        return True
    return any(_nullable(b, schemas) for key in _BRANCHES for b in schema.get(key, []))


def _fill(value: Any, schema: Json, schemas: Json) -> None:
    schema = _resolve(schema, schemas)
    for key in _BRANCHES:
        for branch in schema.get(key, []):
            if not _nullable(branch, schemas):
                _fill(value, branch, schemas)
    if isinstance(value, dict):
        properties: Json = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value and name in properties and _nullable(properties[name], schemas):
                value[name] = None
        for name, child in properties.items():
            if name in value:
                _fill(value[name], child, schemas)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, child in value.items():
                if name not in properties:
                    _fill(child, extra, schemas)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _fill(item, schema["items"], schemas)
