"""Scenario tables: one journey per member and entry, the steps it went through, and the
cursors of the feeds the engine reads (events, segment changes, daily entries).

A journey is ``active`` while it has steps to run; ``due_at`` is when its current step is due
(a wait's end; now for a step to run). Workers claim due journeys with ``FOR UPDATE SKIP
LOCKED``. It ends ``completed`` (no step left), ``converted`` (its goal happened) or
``exited`` (an exit step or an exit condition, ``end_reason`` says which). ``converted_at`` is
also set on a completed journey whose goal happens within the goal's window, so conversion is
measured for holdout journeys that go through without actions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, created_at, uuid_pk

# Python's None stored as SQL NULL (not JSON ``null``): the set-based claim of plain waits
# selects ``waiting IS NULL``.
WAITING = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class ScenarioJourney(Base):
    """A member's way through a scenario, from one entry."""

    __tablename__ = "scenario_journeys"
    __table_args__ = (
        UniqueConstraint("programme_id", "scenario", "member_id", "entry_key"),
        Index("ix_scenario_journeys_status_due_at", "status", "due_at"),
        Index(
            "ix_scenario_journeys_programme_id_scenario_status",
            "programme_id",
            "scenario",
            "status",
        ),
        Index("ix_scenario_journeys_member_id_entered_at", "member_id", "entered_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    scenario: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    entry_key: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]  # the document version it entered under
    holdout: Mapped[bool]
    status: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None]
    # waiting for an event: {"event": type, "since": iso, "then": step, "timeout_to": step}
    waiting: Mapped[dict[str, Any] | None] = mapped_column(WAITING)  # None is SQL NULL
    visits: Mapped[int] = mapped_column(default=0)  # steps run so far: the actions' keys
    event: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the entry event's data
    entered_at: Mapped[datetime]
    converted_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))


class ScenarioStepRun(Base):
    """One step a journey went through, with its outcome (``sent``, ``holdout``, ``then``,
    ``else``, ``waited``, ``timeout``, ``awarded``...) and the message it queued."""

    __tablename__ = "scenario_step_runs"
    __table_args__ = (
        UniqueConstraint("journey_id", "visit"),
        Index(
            "ix_scenario_step_runs_programme_id_scenario_step", "programme_id", "scenario", "step"
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    journey_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scenario_journeys.id", ondelete="CASCADE")
    )
    scenario: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    visit: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[uuid.UUID | None]
    at: Mapped[datetime] = created_at()


class ScenarioCursor(Base):
    """Where the engine is in a feed of a programme: ``events`` and ``segments`` (a time, read
    again with an overlap), ``daily`` (the last local day whose date entries ran)."""

    __tablename__ = "scenario_cursors"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[str] = mapped_column(String(64))
