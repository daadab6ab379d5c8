"""Scenario tests use the messaging tests' real peers (an aiosmtpd server, an HTTP receiver on
127.0.0.1) and run the engine's tick as the worker would, at a chosen time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fidelia.db import Database
from fidelia.models import Programme
from fidelia.scenarios import engine
from fidelia.scenarios import jobs as scenario_jobs
from tests.fixtures.factories import Api
from tests.messaging.conftest import (  # noqa: F401  (fixtures)
    _secrets,
    http_receiver,
    smtp_sink,
)


def tick(
    database: Database, programme: Programme, now: datetime, *, exact: bool = False
) -> engine.Tick:
    """One tick of the programme's scenarios at ``now``, in its own transaction (a job's).
    Unless ``exact``, never before the real time: events are read up to their reception
    time, and a loaded machine posts them slowly."""
    at = now if exact else max(now, datetime.now(UTC))
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        return engine.tick(session, programme=found, now=at, emit=scenario_jobs.emitter())


def stats(api: Api, code: str) -> dict[str, Any]:
    response = api.get(f"/scenarios/{code}/stats", scope="read")
    assert response.status_code == 200, response.text
    return dict(response.json())


def journeys(api: Api, member_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/members/{member_id}/journeys", scope="read")
    assert response.status_code == 200, response.text
    return list(response.json())
