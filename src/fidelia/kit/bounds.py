"""The limits every input is held to, and the annotated types that enforce them at validation.

Each limit exists because something downstream breaks beyond it: the calendar arithmetic of
``datetime`` near years 1 and 9999, 64-bit integer columns, PostgreSQL text (no NUL
character), the JSON serialiser's recursion depth, and the memory and disk of one request.
Refusing at the edge (422, naming the field) means nothing downstream ever sees such a value
and nothing is written. ``docs/decisions.md`` lists the values chosen.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

# -- time -------------------------------------------------------------------------------------
# Instants and days outside [1900, 2200) are refused: far from anything a loyalty programme
# records, and far enough from datetime's limits that time zone and calendar arithmetic (an
# expiry at the end of a period, the local day of an event) can never overflow.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
RANGE_TEXT = "between 1900-01-01 and 2200-01-01 (UTC)"


def check_instant(value: datetime) -> datetime:
    """``value`` in UTC; refuses naive datetimes and instants outside the sane range."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a time zone offset (e.g. +01:00 or Z)")
    # Check the year before converting: converting year 1 or 9999 with an offset overflows.
    if not EARLIEST.year <= value.year < LATEST.year:
        raise ValueError(f"datetime must be {RANGE_TEXT}")
    utc = value.astimezone(UTC)
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"datetime must be {RANGE_TEXT}")
    return utc


def check_day(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"date must be {RANGE_TEXT}")
    return value


Instant = Annotated[datetime, AfterValidator(check_instant)]
"""An aware datetime within the sane range, normalised to UTC."""

Day = Annotated[date, AfterValidator(check_day)]
"""A calendar date within the sane range."""

# -- numbers ----------------------------------------------------------------------------------
# Ledger amounts are integers of a wallet's minor unit in 64-bit columns. One posting moves at
# most MAX_POSTING; no balance or lifetime counter may leave +/- MAX_BALANCE. Even a million
# accounts at the bound sum far below 2**63, so system-account sums never overflow either.
MAX_POSTING = 10**12
MAX_BALANCE = 10**13

# -- free-form JSON ---------------------------------------------------------------------------
MAX_JSON_DEPTH = 16
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_KEY = 200


def check_text(value: str) -> str:
    """Refuse NUL characters (PostgreSQL cannot store them in text; SQLite would)."""
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character (\\u0000)")
    return value


def find_nul(value: Any) -> tuple[str | int, ...] | None:
    """The path of the first key or string holding a NUL character in a JSON value, or None."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path
        elif isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and "\x00" in key:
                    return path
                stack.append(((*path, key), child))
        elif isinstance(node, list):
            stack.extend(((*path, i), child) for i, child in enumerate(node))
    return None


def check_free_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON (event properties, member attributes) within depth and size limits,
    with no NUL character. The size is what the value takes as compact JSON, approximately
    (strings and keys by their length, other scalars as a few bytes)."""
    _check_json(value, 0, 0)
    return value


def _check_json(node: Any, depth: int, size: int) -> int:
    """Check ``node`` and what it holds (depth first, the last child first); the size so far.

    Nodes are checked in the order of a stack walk, so the first limit broken, and so the
    message, do not depend on how the walk is written; scalars are checked in the loop over
    their container's children (no call per scalar: this runs on every event)."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(node, dict):
        for key in node:
            if len(key) > MAX_JSON_KEY:
                raise ValueError(f"a key is longer than {MAX_JSON_KEY} characters")
            if "\x00" in key:
                raise ValueError("a key must not contain the NUL character (\\u0000)")
            size += len(key) + 4
        children: Iterable[Any] = reversed(node.values())
    elif isinstance(node, list):
        size += 8
        children = reversed(node)
    else:
        return _check_scalar(node, depth, size)
    if size > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES // 1024} KiB")
    depth += 1
    for child in children:
        if isinstance(child, (dict, list)):
            size = _check_json(child, depth, size)
        else:
            size = _check_scalar(child, depth, size)
    return size


def _check_scalar(node: Any, depth: int, size: int) -> int:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(node, str):
        size += len(node) + 2
        if "\x00" in node:
            raise ValueError("text must not contain the NUL character (\\u0000)")
    else:
        size += 8
    if size > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES // 1024} KiB")
    return size


FreeJson = Annotated[
    dict[str, Any],
    AfterValidator(check_free_json),
    Field(
        description=f"Free-form JSON object: at most {MAX_JSON_DEPTH} levels deep and "
        f"{MAX_JSON_BYTES // 1024} KiB, no NUL character"
    ),
]


# -- counts, labels and short lists -----------------------------------------------------------
MAX_COUNT = 10**9  # stock, first-N, limits per member, thresholds counted in purchases...

Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
"""A positive count (a limit, a threshold, a stock of at least one)."""

Stock = Annotated[int, Field(ge=0, le=MAX_COUNT)]

LocaleTag = Annotated[str, Field(min_length=2, max_length=35)]

Labels = Annotated[
    dict[LocaleTag, Annotated[str, Field(max_length=1000)]],
    Field(max_length=50, description="Text per locale (BCP 47 tag), e.g. {'fr-FR': '...'}"),
]

ShortText = Annotated[str, Field(min_length=1, max_length=100)]
"""A code, a tier or category name, a field path: what a list or a mapping is keyed by."""
