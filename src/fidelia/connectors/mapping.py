"""The generic connector: a declared mapping from any JSON body to a Fidelia event.

A mapping is a JSON object shaped like an event: each value is either a constant or a path
into the received body, written ``$.a.b[0].c``. ``id`` (the idempotency key, prefixed with the
connector's slug), ``type`` and ``occurred_at`` are required; ``member`` maps to identities
(``email``, ``card``, ``phone``, ``external``); ``properties`` may map any fields::

    {"id": "$.review.id", "type": "review", "occurred_at": "$.review.created_at",
     "member": {"email": "$.customer.email"},
     "properties": {"rating": "$.review.rating", "product": "$.review.sku"}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fidelia.errors import ValidationFailed

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
REQUIRED = ("id", "type", "occurred_at")
ALLOWED = {"id", "type", "occurred_at", "member", "channel", "store", "properties"}


def check_mapping(mapping: Any, *, loc: tuple[str | int, ...] = ("settings", "mapping")) -> None:
    """A 422 naming the place of the first problem in a declared mapping."""
    if not isinstance(mapping, Mapping):
        raise ValidationFailed.on(loc, "must be a JSON object shaped like an event")
    for key in mapping:
        if key not in ALLOWED:
            raise ValidationFailed.on((*loc, key), f"unknown field; one of {sorted(ALLOWED)}")
    for key in REQUIRED:
        if key not in mapping:
            raise ValidationFailed.on((*loc, key), "required")
    _check_paths(mapping, loc)


def _check_paths(value: Any, loc: tuple[str | int, ...]) -> None:
    if isinstance(value, str) and value.startswith("$"):
        rest = value[1:]
        if rest and not re.fullmatch(r"(\.[^.\[\]]+|\[\d+\])+", rest):
            raise ValidationFailed.on(loc, f"{value!r} is not a path like $.order.lines[0].sku")
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _check_paths(inner, (*loc, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _check_paths(inner, (*loc, i))


def read_path(body: Any, path: str) -> Any:
    """The value at ``path`` (``$.a.b[0]``) in ``body``, None where it is missing."""
    found = body
    for name, index in _STEP.findall(path[1:]):
        if name:
            found = found.get(name) if isinstance(found, Mapping) else None
        else:
            found = (
                found[int(index)] if isinstance(found, list) and int(index) < len(found) else None
            )
        if found is None:
            return None
    return found


def apply(mapping: Any, body: Any) -> Any:
    """The mapping with every path replaced by the body's value (missing paths dropped)."""
    if isinstance(mapping, str) and mapping.startswith("$"):
        return read_path(body, mapping)
    if isinstance(mapping, Mapping):
        out = {k: apply(v, body) for k, v in mapping.items()}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(mapping, list):
        return [apply(v, body) for v in mapping]
    return mapping


def event_of(slug: str, mapping: Mapping[str, Any], body: Any) -> dict[str, Any]:
    event = apply(mapping, body)
    for key in REQUIRED:
        if event.get(key) in (None, ""):
            raise ValidationFailed.on(
                key, f"the mapping's {mapping[key]!r} found nothing in the body"
            )
    event["id"] = f"{slug}:{event['id']}"
    return dict(event)
