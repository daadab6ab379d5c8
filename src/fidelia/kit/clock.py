"""The one place that reads the wall clock, so that tests and replays can pin time."""

from __future__ import annotations

from datetime import UTC, datetime

from fidelia.kit.bounds import check_instant


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_aware(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes (and instants outside the sane range of
    :mod:`fidelia.kit.bounds`) are refused rather than guessed."""
    return check_instant(value)
