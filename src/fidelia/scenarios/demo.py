"""The seeds' four journeys for the demo programme (``demo.yaml``), and the clock that runs
them while the demo replays its year: a tick at every local noon of the history, events read
by occurrence time, so the journeys' waits, goals and holdouts play out as they would have.
The clock also runs the replay's own day (``each_day``: the jobs fallen due) before each tick."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.scenarios import engine, entries
from fidelia.scenarios import jobs as scenario_jobs

NOON = time(12, 0)


def demo_sections() -> dict[str, Any]:
    """The ``messaging`` and ``scenarios`` sections of the demo programme."""
    text = resources.files("fidelia.scenarios").joinpath("demo.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


class ReplayClock:
    """Ticks the programme's scenarios at each local noon up to the replayed time, after
    ``each_day(noon)`` if given (what else the programme does as its days pass)."""

    def __init__(
        self,
        database: Database,
        programme_id: uuid.UUID,
        timezone: str,
        each_day: Callable[[datetime], None] | None = None,
    ) -> None:
        self.database, self.programme_id = database, programme_id
        self.tz = ZoneInfo(timezone)
        self.each_day = each_day
        self.next_at: datetime | None = None
        self.ticks = 0

    def until(self, at: datetime) -> None:
        if self.next_at is None:
            self.next_at = datetime.combine(at.astimezone(self.tz).date(), NOON, self.tz)
        while self.next_at <= at:
            if self.each_day is not None:
                self.each_day(self.next_at)
            self._tick(self.next_at)
            self.next_at = datetime.combine(self.next_at.date() + timedelta(days=1), NOON, self.tz)

    def finish(self, now: datetime) -> None:
        """Tick at ``now``, then read the events feed by reception time from here on."""
        self.until(now)
        self._tick(now)
        with self.database.transaction() as session:
            entries.move(session, self.programme_id, "events", utcnow().isoformat())

    def _tick(self, at: datetime) -> None:
        with self.database.transaction() as session:
            programme = session.get(Programme, self.programme_id)
            assert programme is not None
            engine.tick(session, programme=programme, now=at, emit=scenario_jobs.emitter(),
                        replay=True)  # fmt: skip
        self.ticks += 1
