"""Every input the API accepts is bounded where it is declared (issue 17: "make the suite find
the next one").

The defects of issue 17 were one class each: a field type with no bound, so a value reached
the database or the calendar arithmetic and failed there (500). This test walks every request
body, query and path parameter of every operation, and the documents validated from raw JSON
(the programme document, each event of a batch), and requires:

- strings: a ``max_length``; lists and mappings: a ``max_length``;
- integers: an upper bound; decimals: an upper bound or ``max_digits``; floats: no NaN/inf;
- datetimes: :data:`fidelia.kit.bounds.Instant` (aware, within the sane range);
  dates: :data:`fidelia.kit.bounds.Day`;
- free-form JSON objects (``dict[str, Any]``): :data:`fidelia.kit.bounds.FreeJson`.

A new field without its bound fails here, before a fuzzer or a client finds the 500.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import annotated_types as at
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fidelia.api.app import create_app
from fidelia.db import Database
from fidelia.events.schemas import EventIn
from fidelia.programmes.documents import ProgrammeDocument

# Raw JSON bodies that the endpoint validates itself, with the model it validates them with.
VALIDATED_LATER: dict[str, type[BaseModel]] = {
    "/programme/document:body": ProgrammeDocument,
    "EventBatch.events[]": EventIn,
}
# Values of the condition language: any JSON scalar or list, checked by the condition compiler
# (kit.conditions) against the field it compares; the request body limit bounds their size.
CONDITION_VALUES = {"Compare.value", "RewardIn.condition", "RewardUpdate.condition"}


def _flat(meta: list[Any]) -> list[Any]:
    found: list[Any] = []
    for item in meta:
        found.append(item)
        if isinstance(item, FieldInfo):
            found.extend(_flat(list(item.metadata)))
    return found


def _has(meta: list[Any], *kinds: type) -> bool:
    return any(isinstance(m, kinds) for m in meta)


def _validators(meta: list[Any]) -> set[str]:
    return {getattr(getattr(m, "func", None), "__name__", "") for m in meta}


class Walker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.seen: set[type] = set()

    def walk(self, tp: Any, meta: list[Any], path: str) -> None:
        meta = _flat(meta)
        origin = typing.get_origin(tp)
        if path in VALIDATED_LATER:
            self.walk(VALIDATED_LATER[path], [], VALIDATED_LATER[path].__name__)
        elif origin is typing.Annotated:
            first, *rest = typing.get_args(tp)
            self.walk(first, [*meta, *rest], path)
        elif origin in (typing.Union, types.UnionType):
            for arg in typing.get_args(tp):
                if arg is not type(None):
                    self.walk(arg, meta, path)
        elif origin is typing.Literal or _is_closed(tp):
            return
        elif origin in (list, tuple, set, frozenset):
            self._collection(tp, meta, path)
        elif origin is dict:
            self._mapping(tp, meta, path)
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            self._model(tp)
        else:
            self._scalar(tp, meta, path)

    def _collection(self, tp: Any, meta: list[Any], path: str) -> None:
        if not _has(meta, at.MaxLen):
            self.problems.append(f"{path}: a list without max_length")
        for arg in typing.get_args(tp):
            if arg is not Ellipsis:
                self.walk(arg, [], f"{path}[]")

    def _mapping(self, tp: Any, meta: list[Any], path: str) -> None:
        if "check_free_json" in _validators(meta):
            return
        key, value = typing.get_args(tp)
        if value is typing.Any:
            self.problems.append(f"{path}: free-form JSON that is not FreeJson")
            return
        if not _has(meta, at.MaxLen):
            self.problems.append(f"{path}: a mapping without max_length")
        self.walk(key, [], f"{path}{{key}}")
        self.walk(value, [], f"{path}{{}}")

    def _model(self, model: type[BaseModel]) -> None:
        if model in self.seen:
            return
        self.seen.add(model)
        for name, info in model.model_fields.items():
            self.walk(info.annotation, list(info.metadata), f"{model.__name__}.{name}")

    def _scalar(self, tp: Any, meta: list[Any], path: str) -> None:
        problem = _scalar_problem(tp, meta)
        if problem and path not in CONDITION_VALUES:
            self.problems.append(f"{path}: {problem}")


def _is_closed(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum | bool | uuid.UUID)


def _scalar_problem(tp: Any, meta: list[Any]) -> str | None:
    upper = _has(meta, at.Le, at.Lt)
    if tp is str:
        return None if _has(meta, at.MaxLen) else "a string without max_length"
    if tp is int:
        return None if upper else "an integer without an upper bound"
    if tp is decimal.Decimal:
        digits = any(getattr(m, "max_digits", None) for m in meta)
        return None if upper or digits else "a decimal without a bound"
    if tp is float:
        finite = any(getattr(m, "allow_inf_nan", None) is False for m in meta)
        return None if upper and finite else "a float that may be NaN, infinite or unbounded"
    if tp is dt.datetime:
        return None if "check_instant" in _validators(meta) else "a datetime that is not Instant"
    if tp is dt.date:
        return None if "check_day" in _validators(meta) else "a date that is not Day"
    if tp is typing.Any:
        return "an unconstrained value (Any)"
    return None


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI's included routers
            yield from _routes(route.original_router.routes)


@pytest.fixture(scope="module")
def walked() -> Walker:
    app = create_app(Database.from_url("sqlite://"))
    walker = Walker()
    routes = list(_routes(app.routes))
    assert len(routes) > 50, "the walk must see the whole API"
    for route in routes:
        dependant = route.dependant
        for param in [*dependant.body_params, *dependant.query_params, *dependant.path_params]:
            info = param.field_info
            path = f"{route.path}:{param.name}"
            location = "body" if param in dependant.body_params else "query/path"
            if location == "query/path" and info.annotation in (str, str | None):
                # Compared, never stored: services validate the ones that name what they create.
                continue
            walker.walk(info.annotation, list(info.metadata), path)
    return walker


def test_every_input_field_is_bounded(walked: Walker) -> None:
    assert walked.problems == []


def test_the_walk_reaches_the_nested_documents(walked: Walker) -> None:
    names = {model.__name__ for model in walked.seen}
    assert {"EventIn", "ProgrammeDocument", "EarningRule", "WalletIn"} <= names
    assert {"AdjustmentIn", "RewardIn", "TierLevel", "MemberCreate"} <= names


def test_the_walker_finds_an_unbounded_field() -> None:
    """The check can fail: a model with one field of each defect is reported field by field."""

    class Careless(BaseModel):
        note: str
        stock: int
        when: dt.datetime
        day: dt.date
        extra: dict[str, Any]
        tags: list[str]

    walker = Walker()
    walker.walk(Careless, [], "Careless")
    assert sorted(p.split(":")[0] for p in walker.problems) == [
        "Careless.day",
        "Careless.extra",
        "Careless.note",
        "Careless.stock",
        "Careless.tags",
        "Careless.tags[]",
        "Careless.when",
    ]
