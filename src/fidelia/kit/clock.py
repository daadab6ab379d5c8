"""The one place that reads the wall clock, so that tests and replays can pin time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_aware(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a time zone offset")
    return value.astimezone(UTC)
