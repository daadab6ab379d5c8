"""The event log: listed per member in the order things happened; append-only in the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from fidelia.db import Database
from fidelia.models import ConsentChange, Event, Member
from tests.fixtures.events import consent_changed, event, ref
from tests.fixtures.factories import Api


def test_a_members_events_are_listed_in_occurred_at_order_across_pages(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member, other = member_factory(), member_factory()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    # Sent out of order, with ties on occurred_at that straddle page boundaries.
    offsets = [5, 1, 3, 3, 3, 0, 4, 2, 2, 6, 3]
    sent = [
        event("page_view", ref(member), {"n": i}, occurred_at=base + timedelta(hours=h))
        for i, h in enumerate(offsets)
    ]
    api.post("/events/batch", json={"events": sent[:6]})
    api.post("/events/batch", json={"events": sent[6:]})
    api.post("/events", json=event("page_view", ref(other), occurred_at=base))

    listed: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"/members/{member.id}/events", params=params, scope="read").json()
        listed.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert len(listed) == len(sent)
    assert sorted(e["properties"]["n"] for e in listed) == list(range(len(sent)))  # type: ignore[index]
    times = [datetime.fromisoformat(str(e["occurred_at"])) for e in listed]
    assert times == sorted(times)
    ties = [e["properties"]["n"] for e in listed if e["occurred_at"] == listed[4]["occurred_at"]]  # type: ignore[index]
    assert ties == [2, 3, 4, 10]  # same instant: in the order received


def test_a_bad_events_cursor_is_422(api: Api, member_factory: Callable[..., Member]) -> None:
    member = member_factory()

    response = api.get(f"/members/{member.id}/events", params={"cursor": "bm90LWEtY3Vyc29y"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["query", "cursor"]


def test_an_unknown_event_id_is_404(api: Api) -> None:
    assert api.get("/events/never-sent").status_code == 404


@pytest.mark.parametrize("table", [Event, ConsentChange])
def test_the_event_log_and_consent_history_refuse_update_and_delete(
    api: Api, member_factory: Callable[..., Member], database: Database, table: type
) -> None:
    member = member_factory()
    api.post("/events", json=consent_changed(ref(member), "email", True))

    with pytest.raises(DBAPIError), database.transaction() as session:
        session.execute(
            update(table).where(table.member_id == member.id).values(member_id=member.id)
        )
    with pytest.raises(DBAPIError), database.transaction() as session:
        session.execute(delete(table).where(table.member_id == member.id))
    with pytest.raises(DBAPIError), database.transaction() as session:
        session.execute(text(f"DELETE FROM {table.__tablename__}"))

    with database.transaction(readonly=True) as session:
        rows = session.scalars(select(table).where(table.member_id == member.id)).all()
    assert len(rows) == 1
    assert rows[0].channel == (None if table is Event else "email")
