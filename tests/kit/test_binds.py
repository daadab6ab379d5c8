"""kit.bulk.bind_processor and UTCDateTime's fused processor: the value bound is exactly what
SQLAlchemy's own processors make of it (SQLite's DATETIME text, a Uuid's hex, the JSON text
of ``json.dumps``), for many values; what they refuse is refused the same way."""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Dialect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.types import TypeDecorator, Uuid

from fidelia.kit.bulk import bind_processor
from fidelia.kit.ids import uuid7
from fidelia.models.base import JSONType, UTCDateTime

SQLITE = sqlite.dialect()
# naive bounds of generated wall times, a zone added after (a year from the ends: no overflow)
EARLIEST = datetime(2, 1, 1)  # noqa: DTZ001
LATEST = datetime(9998, 12, 31)  # noqa: DTZ001
POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]  # psycopg
ZONES = [
    UTC,
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/St_Johns"),
    ZoneInfo("Asia/Kathmandu"),
    timezone(timedelta(hours=-11, minutes=-30)),
    timezone(timedelta(hours=5, minutes=30, seconds=15, microseconds=7)),
]


def ours(kind: Any, dialect: Dialect) -> Callable[[Any], Any]:
    """kit.bulk's processor for the column type."""
    found = bind_processor(kind, dialect)
    assert found is not None
    return found


def theirs(kind: Any, dialect: Dialect) -> Any:
    """SQLAlchemy's own processor chain for the column type."""
    impl = kind.dialect_impl(dialect)
    if isinstance(impl, TypeDecorator):
        return TypeDecorator.bind_processor(impl, dialect)
    return impl.bind_processor(dialect)


def sqlite_text(value: datetime) -> str:
    """SQLite's DATETIME text as SQLAlchemy writes it for a naive datetime."""
    processor = DATETIME().bind_processor(SQLITE)  # type: ignore[no-untyped-call]
    assert processor is not None
    return str(processor(value.astimezone(UTC).replace(tzinfo=None)))


def test_the_fast_processors_are_chosen() -> None:
    assert ours(UTCDateTime(), SQLITE).__name__ == "iso_text"
    assert ours(UTCDateTime(), POSTGRESQL).__name__ == "aware_utc"
    assert ours(Uuid(), SQLITE).__name__ == "uuid_hex"
    assert ours(JSONType, SQLITE).__name__ == "json_text"
    assert bind_processor(Uuid(), POSTGRESQL) is None  # the driver binds it


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=EARLIEST, max_value=LATEST),
    st.sampled_from(ZONES),
)
def test_a_utc_datetime_binds_as_sqlalchemy_binds_it(moment: datetime, zone: Any) -> None:
    value = moment.replace(tzinfo=zone)
    mine = ours(UTCDateTime(), SQLITE)
    assert mine(value) == theirs(UTCDateTime(), SQLITE)(value) == sqlite_text(value)
    bound = ours(UTCDateTime(), POSTGRESQL)(value)
    assert bound == theirs(UTCDateTime(), POSTGRESQL)(value) == value
    assert bound.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 1, 9, 30, tzinfo=UTC),  # microsecond 0: still six digits
        datetime(2026, 12, 1, 9, 30, 0, 1, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),  # a gap
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),  # a fold
        datetime(999, 5, 4, 3, 2, 1, 999999, tzinfo=UTC),  # year < 1000: four digits
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-3))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_edge_datetimes_bind_as_sqlalchemy_binds_them(value: datetime) -> None:
    for dialect in (SQLITE, POSTGRESQL):
        assert ours(UTCDateTime(), dialect)(value) == theirs(UTCDateTime(), dialect)(value)
    assert ours(UTCDateTime(), SQLITE)(value) == sqlite_text(value)


def test_one_processor_gives_each_value_its_own_text_in_any_order_and_thread() -> None:
    """The SQLite processor keeps the last datetime's text: a value seen again (the same
    object) gets it back, any other value its own, even from threads at once."""
    mine = ours(UTCDateTime(), SQLITE)
    values = [
        datetime(2026, 12, 1, 9, 30, i % 7, i, tzinfo=ZoneInfo("Europe/Paris")) for i in range(50)
    ]
    order = [values[i // 3] for i in range(150)] + values[::-1] + values  # repeats and changes
    assert [mine(v) for v in order] == [sqlite_text(v) for v in order]
    wrong: list[tuple[datetime, str]] = []

    def run(offset: int) -> None:
        for i in range(3_000):
            v = values[(i * (offset + 1)) % len(values)]
            got = mine(v)
            if got != sqlite_text(v):
                wrong.append((v, got))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


class Moment(datetime):
    """A datetime subclass: bound by SQLAlchemy's chain."""


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=["sqlite", "postgresql"])
def test_none_subclasses_and_naive_datetimes_take_sqlalchemys_way(dialect: Dialect) -> None:
    mine = ours(UTCDateTime(), dialect)
    assert mine(None) is None
    odd = Moment(2026, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("Europe/Paris"))
    assert mine(odd) == theirs(UTCDateTime(), dialect)(odd)
    with pytest.raises(ValueError, match="naive datetime"):
        mine(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


@settings(max_examples=200, deadline=None)
@given(
    st.uuids() | st.builds(uuid7) | st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=-1 % 2**128)])
)
def test_a_uuid_binds_as_its_hex(value: uuid.UUID) -> None:
    mine = ours(Uuid(), SQLITE)
    assert mine(value) == theirs(Uuid(), SQLITE)(value) == value.hex
    assert mine(None) is None


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES)
def test_json_binds_as_json_dumps_writes_it(value: Any) -> None:
    mine = ours(JSONType, SQLITE)(value)
    assert mine == theirs(JSONType, SQLITE)(value) == json.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"é": "ü\u2028\x00", "n": -0.0, "x": 1e300, "big": 10**40, "t": (1, 2)},
        {1: "int key", None: "none key", False: 1.5, 2.5: "float key"},
        [math.inf, -math.inf, math.nan, None, [{}], {"a": []}],
        None,  # JSON null (the column keeps it as text 'null', as SQLAlchemy does)
        "a string",
        3,
        JSON.NULL,
    ],
)
def test_edge_json_values_bind_as_sqlalchemy_binds_them(value: Any) -> None:
    assert ours(JSONType, SQLITE)(value) == theirs(JSONType, SQLITE)(value)


def test_json_refuses_what_json_dumps_refuses() -> None:
    mine, sqlalchemys = ours(JSONType, SQLITE), theirs(JSONType, SQLITE)
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for bad, error in (
        (circular, ValueError),
        ({"at": datetime(2026, 1, 1, tzinfo=UTC)}, TypeError),
        ([uuid.UUID(int=1)], TypeError),
        ({(1, 2): "tuple key"}, TypeError),
    ):
        with pytest.raises(error) as found:
            mine(bad)
        with pytest.raises(error) as expected:
            sqlalchemys(bad)
        assert str(found.value) == str(expected.value)
    assert mine({"fine": 1}) == '{"fine": 1}'  # nothing left behind by a failure
