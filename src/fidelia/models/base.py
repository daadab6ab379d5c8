"""Declarative base, constraint naming convention and portable column types."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC everywhere: ``timestamptz`` on PostgreSQL, ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """:meth:`process_bind_param` and the dialect's own processor in one call, for the
        values whose result is known: an aware ``datetime`` becomes, on SQLite, the text of
        its default DATETIME format (``2026-12-01 09:30:00.000000``, naive UTC: what
        ``isoformat`` writes, in C) and, on PostgreSQL, the UTC datetime the driver takes.
        Anything else (None, a naive or subclassed datetime, another storage format) goes
        through SQLAlchemy's chain. Two Python calls and a format of a dict fewer per value,
        on every path (ORM, Core, kit.bulk, kit.prepared): issue 18. Tests prove the same."""
        chain = super().bind_processor(dialect)
        assert chain is not None  # process_bind_param is defined
        impl = self.impl_instance
        if dialect.name == "sqlite":
            storage = getattr(impl, "_storage_format", None)
            if type(impl) is not SQLITE_DATETIME or storage != SQLITE_DATETIME._storage_format:
                return chain

            last: tuple[Any, Any] = (None, None)  # the last value and its text

            def iso_text(value: Any) -> Any:
                # a column of a group's rows holds the same datetime again and again (the
                # group's now, an event's time): the last one's text is kept, in one tuple
                # so that threads never see a value with another's text
                nonlocal last
                seen = last
                if value is seen[0]:
                    return seen[1]
                if value.__class__ is not datetime or value.tzinfo is None:
                    return chain(value)
                text = value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]  # "+00:00"
                last = (value, text)
                return text

            return iso_text
        if dialect.name != "postgresql" or impl.bind_processor(dialect) is not None:
            return chain

        def aware_utc(value: Any) -> Any:
            if value.__class__ is not datetime or value.tzinfo is None:
                return chain(value)
            return value.astimezone(UTC)

        return aware_utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=uuid7)


def created_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow)
