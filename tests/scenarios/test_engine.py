"""The engine's guarantees: bad documents refused with their path and nothing saved; holdout
members go through without actions and the lift compares the arms; a crashed tick sends
nothing twice; exits; actions (points, attributes, emitted events); a removed step; preview and
back-test write nothing."""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Event, Programme, ProgrammeVersion
from fidelia.models.messaging import Message
from fidelia.models.scenarios import ScenarioJourney, ScenarioStepRun
from fidelia.scenarios import engine
from fidelia.scenarios import jobs as scenario_jobs
from fidelia.scenarios.service import bucket
from tests.fixtures.events import purchase
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.messaging.conftest import WELCOME, SmtpSink, apply, deliver, enrol, messaging_doc
from tests.scenarios.conftest import journeys, stats, tick

SIMPLE = {
    "code": "hello",
    "name": "Hello",
    "entry": {"kind": "event", "event": "enrolment"},
    "holdout_percent": 0,
    "steps": [
        {"id": "send", "kind": "action",
         "do": {"type": "message", "template": "welcome", "channels": ["email"]}},
    ],
}  # fmt: skip


def _doc(port: int | None, *scenarios: dict[str, Any], **section: Any) -> dict[str, Any]:
    doc = messaging_doc(port, templates=[WELCOME])
    doc["scenarios"] = {"definitions": list(scenarios), **section}
    return doc


def _versions(database: Database, api: Api) -> int:
    return count_rows(database, ProgrammeVersion, ProgrammeVersion.programme_id == api.programme.id)


def _with(**changes: Any) -> dict[str, Any]:
    scenario = copy.deepcopy(SIMPLE)
    scenario.update(changes)
    return scenario


@pytest.mark.parametrize(
    ("scenario", "loc", "says"),
    [
        (_with(steps=[{"id": "a", "kind": "wait", "duration": {"days": 1}, "next": "nowhere"}]),
         ["steps", 0, "next"], "no step 'nowhere'"),
        (_with(steps=[
            {"id": "a", "kind": "branch", "split": 50, "then": "b", "else": "b"},
            {"id": "b", "kind": "action", "do": {"type": "attribute", "name": "x", "value": 1},
             "next": "a"}]),
         ["steps", 0], "a cycle without a wait: a -> b -> a"),
        (_with(steps=[{"id": "a", "kind": "action",
                       "do": {"type": "message", "template": "nope"}}]),
         ["steps", 0, "do", "template"], "no such template"),
        (_with(steps=[{"id": "a", "kind": "action",
                       "do": {"type": "message", "template": "welcome", "channels": ["sms"]}}]),
         ["steps", 0, "do", "channels", 0], "channel 'sms' is not configured"),
        (_with(entry={"kind": "segment", "segment": "ghosts"}),
         ["entry", "segment"], "declare it in segments"),
        (_with(steps=[{"id": "a", "kind": "action",
                       "do": {"type": "award", "wallet": "stars", "amount": 5}}]),
         ["steps", 0, "do", "wallet"], "no wallet"),
    ],
)  # fmt: skip
def test_a_bad_scenario_is_a_422_with_its_path_and_nothing_is_saved(
    api: Api, database: Database, scenario: dict[str, Any], loc: list[Any], says: str
) -> None:
    apply(api, messaging_doc(2525, templates=[WELCOME]))
    before = _versions(database, api)
    response = api.put("/programme/document", json=_doc(2525, scenario))
    assert response.status_code == 422, response.text
    field = response.json()["fields"][0]
    assert field["loc"] == ["body", "scenarios", "definitions", 0, *loc]
    assert says in field["msg"]
    assert _versions(database, api) == before


def test_a_wait_with_two_kinds_is_refused_naming_the_step(api: Api, database: Database) -> None:
    steps = [{"id": "a", "kind": "wait", "duration": {"days": 1}, "until_time": "10:00"}]
    response = api.put("/programme/document", json=_doc(2525, _with(steps=steps)))
    assert response.status_code == 422, response.text
    assert "scenarios.definitions.0.steps.0.wait" in response.json()["detail"]
    assert "give one of duration" in response.json()["detail"]
    assert _versions(database, api) == 0


def test_holdout_members_get_nothing_and_the_lift_compares_the_arms(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port, _with(holdout_percent=50, goal={"event": "purchase"})))
    members: list[str] = []
    held: set[str] = set()  # deterministic: the hash of the scenario and the member
    # twelve members, more if the ids drawn leave an arm with fewer than two (the purchases
    # below need two treated buyers and the revenue interval two members per arm)
    while len(members) < 12 or min(len(held), len(members) - len(held)) < 2:
        member = enrol(api, email=unique_email(), consents={"email": True})
        members.append(member)
        if bucket("holdout", "hello", member) < 50:
            held.add(member)
    n = len(members)
    now = datetime.now(UTC)
    assert tick(database, api.programme, now + timedelta(seconds=1)).entered == n
    deliver(database, now + timedelta(seconds=2), api=api)
    for m in members:
        (journey,) = journeys(api, m)
        assert journey["holdout"] is (m in held)
    assert len(sink.received) == n - len(held)
    buyers = [m for m in members if m not in held][:2] + sorted(held)[:1]
    for m in buyers:
        response = api.post("/events", json=purchase({"id": m}, occurred_at=now + timedelta(
            seconds=3)), scope="integration")  # fmt: skip
        assert response.status_code == 201, response.text
    tick(database, api.programme, now + timedelta(seconds=4))
    figures = stats(api, "hello")
    treated, holdout = figures["treated"], figures["holdout"]
    assert (treated["entered"], treated["converted"]) == (n - len(held), 2)
    assert (holdout["entered"], holdout["converted"]) == (len(held), 1)
    assert figures["steps"]["send"] == {"queued": n - len(held), "holdout": len(held)}
    expected = 2 / (n - len(held)) - 1 / len(held)
    assert figures["lift"]["difference"] == pytest.approx(expected)
    assert figures["lift"]["ci_low"] < expected < figures["lift"]["ci_high"]
    revenue = figures["revenue"]  # each purchase is 20.00 (two lines of 10.00)
    assert revenue["treated_per_member"] == pytest.approx(40 / (n - len(held)))
    assert revenue["holdout_per_member"] == pytest.approx(20 / len(held))
    assert revenue["difference"]["difference"] == pytest.approx(
        40 / (n - len(held)) - 20 / len(held)
    )


def test_a_tick_that_crashes_sends_nothing_and_the_next_one_sends_once(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, _doc(port, SIMPLE))
    email = unique_email()
    member = enrol(api, email=email, consents={"email": True})
    now = datetime.now(UTC) + timedelta(seconds=1)
    queued: list[int] = []

    def crash() -> None:
        with database.transaction() as session:
            programme = session.get(Programme, api.programme.id)
            assert programme is not None
            queued.append(engine.tick(session, programme=programme, now=now).messages)
            raise RuntimeError("worker died")  # before the commit

    with pytest.raises(RuntimeError, match="worker died"):
        crash()
    assert queued == [1]
    assert (
        count_rows(database, ScenarioJourney, ScenarioJourney.member_id == uuid.UUID(member)) == 0
    )
    tick(database, api.programme, now)
    tick(database, api.programme, now + timedelta(seconds=1))  # the feed read again: no-op
    deliver(database, now + timedelta(seconds=2), api=api)
    assert [r for r, _ in sink.received] == [[email]]
    assert count_rows(database, Message, Message.member_id == uuid.UUID(member)) == 1


def test_closed_members_and_withdrawn_consent_end_journeys_at_once(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    _, port = smtp_sink
    waiting = _with(steps=[
        {"id": "later", "kind": "wait", "duration": {"days": 2}},
        *SIMPLE["steps"],
    ])  # fmt: skip
    apply(api, _doc(port, waiting))
    closing, withdrawing, staying = (
        enrol(api, email=unique_email(), consents={"email": True}) for _ in range(3)
    )
    now = datetime.now(UTC)
    tick(database, api.programme, now + timedelta(seconds=1))
    assert api.post(f"/members/{closing}/status", json={"status": "closed"}).status_code == 200
    response = api.post(f"/members/{withdrawing}/consents",
                        json={"channel": "email", "granted": False})  # fmt: skip
    assert response.status_code in (200, 201), response.text
    tick(database, api.programme, now + timedelta(seconds=2))
    ends = {m: (journeys(api, m)[0]["status"], journeys(api, m)[0]["end_reason"])
            for m in (closing, withdrawing, staying)}  # fmt: skip
    assert ends == {
        closing: ("exited", "member closed"),
        withdrawing: ("exited", "consent withdrawn"),
        staying: ("active", None),
    }


def test_actions_award_points_set_an_attribute_and_emit_an_event_once(
    api: Api, database: Database
) -> None:
    acting = _with(steps=[
        {"id": "gift", "kind": "action", "do": {"type": "award", "wallet": "points", "amount": 50}},
        {"id": "tag", "kind": "action",
         "do": {"type": "attribute", "name": "welcomed", "value": True}},
        {"id": "tell", "kind": "action",
         "do": {"type": "emit", "event": "welcome_given", "properties": {"offer": "w10"}}},
    ])  # fmt: skip
    apply(api, _doc(None, acting))
    member = enrol(api, email=unique_email(), consents={"email": True})
    now = datetime.now(UTC) + timedelta(seconds=1)
    tick(database, api.programme, now)
    tick(database, api.programme, now + timedelta(seconds=1))
    got = api.get(f"/members/{member}", scope="read").json()
    assert got["attributes"]["welcomed"] is True
    balances = api.get(f"/members/{member}/wallets", scope="read").json()
    assert any(b["wallet"] == "points" and b["available"] == 50 for b in balances), balances
    with database.transaction() as session:
        emitted = session.scalars(
            select(Event).where(Event.member_id == uuid.UUID(member), Event.type == "welcome_given")
        ).all()
    assert len(emitted) == 1
    assert emitted[0].properties == {"offer": "w10", "scenario": "hello"}


def test_a_journey_in_a_removed_step_completes_and_a_removed_scenario_exits(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    _, port = smtp_sink
    two_steps = _with(steps=[
        {"id": "later", "kind": "wait", "duration": {"days": 1}, "next": "bonus"},
        {"id": "bonus", "kind": "action", "do": {"type": "award", "wallet": "points", "amount": 5}},
    ])  # fmt: skip
    other = _with(code="other", name="Other", steps=two_steps["steps"])
    apply(api, _doc(port, two_steps, other))
    member = enrol(api, email=unique_email(), consents={"email": True})
    now = datetime.now(UTC)
    tick(database, api.programme, now + timedelta(seconds=1))
    edited = _with(steps=[{"id": "later", "kind": "wait", "duration": {"days": 1}, "next": "x"},
                          {"id": "x", "kind": "exit"}])  # fmt: skip
    apply(api, _doc(port, edited))
    tick(database, api.programme, now + timedelta(days=2))
    ends = {j["scenario"]: (j["status"], j["end_reason"]) for j in journeys(api, member)}
    assert ends == {"hello": ("completed", "step removed"), "other": ("exited", "scenario removed")}


def test_segment_entry_preview_and_backtest_write_nothing(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    _, port = smtp_sink
    condition = {"field": "events.purchase.count_90d", "op": "gte", "value": 1}
    segment = {"code": "buyers", "labels": {"fr": "Acheteurs"}, "condition": condition}
    by_segment = _with(code="buyers-hello", entry={"kind": "segment", "segment": "buyers"})
    doc = _doc(port, SIMPLE, by_segment)
    doc["segments"] = {"definitions": [segment]}
    response = api.put("/programme/document", json=doc)
    assert response.status_code == 200, response.text
    buyer = enrol(api, email=unique_email(), consents={"email": True})
    now = datetime.now(UTC)
    response = api.post("/events", json=purchase({"id": buyer}, occurred_at=now),
                        scope="integration")  # fmt: skip
    assert response.status_code == 201, response.text
    preview = api.post("/scenarios/buyers-hello/preview", json={}, scope="read")
    assert preview.status_code == 200, preview.text
    assert preview.json()["entering"] == 1
    assert preview.json()["sample"] == [buyer]
    path = api.post("/scenarios/hello/preview", json={"member_id": buyer}, scope="read").json()
    assert path["path"][0]["channel"] == "email"
    assert path["path"][0]["rendered"]["subject"].startswith("Bienvenue")
    window = {"since": (now - timedelta(days=1)).isoformat(),
              "until": (now + timedelta(days=1)).isoformat()}  # fmt: skip
    replay = api.post("/scenarios/hello/backtest", json=window, scope="read").json()
    assert (replay["entries"], replay["messages_on_entry"]) == (1, 1)
    assert count_rows(database, ScenarioJourney, ScenarioJourney.member_id == uuid.UUID(buyer)) == 0
    tick(database, api.programme, now + timedelta(seconds=2))
    entered = {j["scenario"] for j in journeys(api, buyer)}
    assert entered == {"hello", "buyers-hello"}
    assert count_rows(database, ScenarioStepRun, ScenarioStepRun.scenario == "buyers-hello") >= 1
    bad = api.post("/scenarios/hello/backtest", json={**window, "until": window["since"]},
                   scope="read")  # fmt: skip
    assert bad.status_code == 422
    assert api.post("/scenarios/nope/preview", json={}, scope="read").status_code == 404


def test_the_tick_job_reschedules_itself(api: Api, database: Database) -> None:
    apply(api, _doc(None, _with(steps=[{"id": "x", "kind": "exit"}])))
    enrol(api, email=unique_email(), consents={"email": True})
    ran = deliver(database)
    assert ran >= 1
    with database.transaction() as session:
        pending = session.scalars(
            select(scenario_jobs.Job).where(
                scenario_jobs.Job.programme_id == api.programme.id,
                scenario_jobs.Job.kind == scenario_jobs.TICK_JOB,
                scenario_jobs.Job.status == "pending",
            )
        ).all()
    assert len(pending) == 1
    assert pending[0].due_at > datetime.now(UTC)


def test_two_workers_ticking_at_once_send_each_message_once(
    api: Api, database: Database, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL (SQLite has one writer)")
    apply(api, _doc(None, _with(steps=[
        {"id": "gift", "kind": "action", "do": {"type": "award", "wallet": "points", "amount": 5}},
        {"id": "hello", "kind": "action",
         "do": {"type": "message", "template": "welcome", "channels": ["inbox"]}},
    ])))  # fmt: skip
    tick(database, api.programme, datetime.now(UTC))  # the feeds' cursors exist
    members = [enrol(api, email=unique_email(), consents={"email": True}) for _ in range(30)]
    now = datetime.now(UTC) + timedelta(seconds=1)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            tick(database, api.programme, now)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [uuid.UUID(m) for m in members]
    assert count_rows(database, Message, Message.member_id.in_(ids)) == 30
    assert count_rows(database, ScenarioJourney, ScenarioJourney.member_id.in_(ids)) == 30
    for m in members[:3]:
        balances = api.get(f"/members/{m}/wallets", scope="read").json()
        assert [b["available"] for b in balances if b["wallet"] == "points"] == [5]


def test_a_tick_that_leaves_due_journeys_behind_is_followed_by_another_at_once(
    api: Api, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scenario_jobs, "BATCH", 2)
    monkeypatch.setattr(scenario_jobs, "MAX_BATCHES", 1)
    apply(api, _doc(None, _with(steps=[
        {"id": "tag", "kind": "action", "do": {"type": "attribute", "name": "seen", "value": 1}},
    ])))  # fmt: skip
    members = [enrol(api, email=unique_email(), consents={"email": True}) for _ in range(5)]
    deliver(database)  # the tick jobs: 2 journeys each, each followed by the next at once
    for m in members:
        assert api.get(f"/members/{m}", scope="read").json()["attributes"] == {"seen": 1}


def test_a_scheduled_send_enters_every_active_member_once_that_day(
    api: Api, database: Database
) -> None:
    today = datetime.now(UTC).astimezone(ZoneInfo(api.programme.timezone)).date()
    entry = {"kind": "schedule", "on": today.isoformat(), "at": "00:00"}
    tag = {
        "id": "tag",
        "kind": "action",
        "do": {"type": "attribute", "name": "told", "value": "yes"},
    }
    scheduled = _with(code="monthly", entry=entry, steps=[tag])
    apply(api, _doc(None, scheduled))
    members = [enrol(api, email=unique_email(), consents={"email": True}) for _ in range(3)]
    assert tick(database, api.programme, datetime.now(UTC)).entered == 3
    assert tick(database, api.programme, datetime.now(UTC)).entered == 0  # once that day
    for m in members:
        assert api.get(f"/members/{m}", scope="read").json()["attributes"] == {"told": "yes"}
    bad = _with(entry={"kind": "schedule", "on": "2026-02-30"})
    response = api.put("/programme/document", json=_doc(None, bad))
    assert response.status_code == 422
    assert "scenarios.definitions.0.entry.schedule.on" in response.json()["detail"]
