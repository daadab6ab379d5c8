"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


def _page_examples(schema: dict[str, Any], cls: type[Any]) -> None:
    """A page of ``X`` shows the first example of ``X`` (if ``X`` has one), then a cursor."""
    args = cls.__pydantic_generic_metadata__["args"]
    extra = getattr(args[0], "model_config", {}).get("json_schema_extra") if args else None
    if isinstance(extra, dict) and isinstance(extra.get("examples"), list) and extra["examples"]:
        cursor = encode_cursor(
            ["2026-11-14T15:42:10+00:00", "01a1dab9-2c38-7bf1-b42c-024362590992"]
        )
        schema["examples"] = [{"items": extra["examples"][:1], "next_cursor": cursor}]


class Page(BaseModel, Generic[T]):
    """One page of a list, newest or oldest first as the endpoint says; pass ``next_cursor``
    back as ``cursor`` for the next page (null: this is the last one)."""

    model_config = ConfigDict(json_schema_extra=_page_examples)

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; raises ``ValueError`` if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if not isinstance(values, list):
        raise ValueError("malformed cursor")
    return values
