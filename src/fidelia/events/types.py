"""Custom event types declared by a programme, with a JSON schema for their properties."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import FieldError, NotFound, ValidationFailed
from fidelia.events import examples as ex
from fidelia.events.schemas import BUILT_IN_TYPES, EVENT_TYPE_PATTERN
from fidelia.examples import examples
from fidelia.kit.bounds import FreeJson
from fidelia.models import EventType, Programme


class EventTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.EVENT_TYPE_IN))

    description: str = Field(default="", max_length=2000)
    json_schema: FreeJson = Field(
        description="JSON Schema (2020-12) of the event's properties", alias="schema"
    )


class EventTypeOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, populate_by_name=True, json_schema_extra=examples(ex.EVENT_TYPE)
    )

    name: str
    description: str
    json_schema: dict[str, Any] = Field(serialization_alias="schema")


def declare(session: Session, *, programme: Programme, name: str, data: EventTypeIn) -> EventType:
    """Create or replace the declaration of a custom event type."""
    if name in BUILT_IN_TYPES:
        raise ValidationFailed.on(("path", "name"), f"{name!r} is a built-in type")
    if re.fullmatch(EVENT_TYPE_PATTERN, name) is None:
        raise ValidationFailed.on(("path", "name"), "lower case letters, digits, '_' and '.'")
    try:
        Draft202012Validator.check_schema(data.json_schema)
    except SchemaError as exc:
        path = ("schema", *exc.path)
        raise ValidationFailed(
            f"schema is not a valid JSON Schema: {exc.message}",
            fields=[FieldError(tuple(path), exc.message)],
        ) from exc
    row = session.scalar(
        select(EventType).where(EventType.programme_id == programme.id, EventType.name == name)
    )
    if row is None:
        row = EventType(programme_id=programme.id, name=name, json_schema=data.json_schema)
        session.add(row)
    row.description = data.description
    row.json_schema = data.json_schema
    session.flush()
    return row


def list_types(session: Session, *, programme: Programme) -> list[EventType]:
    query = select(EventType).where(EventType.programme_id == programme.id).order_by(EventType.name)
    return list(session.scalars(query))


def get(session: Session, *, programme: Programme, name: str) -> EventType:
    row = session.scalar(
        select(EventType).where(EventType.programme_id == programme.id, EventType.name == name)
    )
    if row is None:
        raise NotFound(f"event type {name!r} is not declared")
    return row


def validators(session: Session, *, programme: Programme) -> dict[str, Draft202012Validator]:
    """One compiled validator per declared type of the programme."""
    return {
        row.name: Draft202012Validator(row.json_schema)
        for row in list_types(session, programme=programme)
    }
