"""Group commit of ``POST /events`` against real uvicorn servers on 127.0.0.1 (issue 18).

Concurrent requests to one server share transactions, yet each is answered with its own
outcome, and a refused event neither writes nor fails its neighbours. Two servers on one
PostgreSQL database, each grouping its own requests, keep a first-N cap and a budget exact.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from fidelia.api.app import create_app
from fidelia.auth import service as apikeys
from fidelia.auth.schemas import Scope
from fidelia.db import Database
from fidelia.intake.group import GroupCommit
from fidelia.ledger.verify import verify
from fidelia.models import (
    Account,
    Entry,
    Event,
    LedgerTransaction,
    Member,
    Programme,
    Wallet,
)
from fidelia.programmes import documents
from tests.fixtures.events import line, purchase, ref
from tests.fixtures.factories import make_member, make_programme
from tests.integration.test_rule_limits import BUDGET, FIRST_N, LIMITED

THREADS, NEW = 16, 18


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _programme(
    database: Database, document: dict[str, Any], members: int
) -> tuple[Programme, list[Member], dict[str, str]]:
    """A fresh programme with ``document`` applied, its members and an integration key."""
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=document, actor="test")
    people = [make_member(database, programme) for _ in range(members)]
    with database.transaction() as session:
        live = session.get(Programme, programme.id)
        assert live is not None
        assert live.live_version == 1
        _, key = apikeys.create(session, programme=live, name="till", scope=Scope.integration)
    return live, people, {"Authorization": f"Bearer {key}"}


Answer = tuple[str, int, dict[str, Any]]  # the event id sent, the status, the body


def _concurrently(
    base_urls: list[str], headers: dict[str, str], shares: list[list[dict[str, Any]]]
) -> list[Answer]:
    """Thread ``t`` sends ``shares[t]`` in order on one keep-alive connection to
    ``base_urls[t % len(base_urls)]``, all threads starting together; every answer."""
    barrier = threading.Barrier(len(shares))
    answers: list[Answer] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def client(t: int) -> None:
        try:
            base = base_urls[t % len(base_urls)]
            with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                http.get("/healthz")  # connected before the barrier: the posts leave together
                barrier.wait(timeout=60)
                for payload in shares[t]:
                    response = http.post("/api/v1/events", json=payload)
                    with lock:
                        answers.append((payload["id"], response.status_code, response.json()))
        except BaseException as exc:  # the test asserts that nothing failed
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(len(shares))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == [], failures
    return answers


def _counters(app: FastAPI) -> tuple[int, int]:
    committer: GroupCommit = app.state.group_commit
    return committer.groups, committer.grouped


# -- (a) one server, 32 requests from 16 threads ------------------------------------------------

SPEND: dict[str, Any] = {
    "rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}]
}


def _buy(member: Member, euros: int, **envelope: Any) -> dict[str, Any]:
    return purchase(ref(member), lines=[line("sku", 1, f"{euros}.00")], **envelope)


def test_concurrent_events_are_grouped_and_each_answered_with_its_own_outcome(
    database: Database,
) -> None:
    programme, members, headers = _programme(database, SPEND, members=16)
    app = create_app(database)
    with serving(app) as base:
        # six earlier events: three will be resent as they were, three reused for other content
        earlier = [_buy(members[i], 50 + i, id=f"earlier-{i}") for i in range(6)]
        first_answers: dict[str, dict[str, Any]] = {}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            for payload in earlier:
                response = http.post("/api/v1/events", json=payload)
                assert response.status_code == 201, response.text
                first_answers[payload["id"]] = response.json()
        before = _counters(app)

        # 32 requests: 18 new purchases (10 € + i each, so every answer is recognisable), 3 for
        # nobody, 3 ids reused with other content, 3 totals that are not their lines, 3 resends,
        # and 2 new purchases each sent twice at once by two threads
        requests: list[tuple[str, dict[str, Any]]] = []
        for i in range(NEW):
            requests.append(("accepted", _buy(members[i % 16], 10 + i, id=f"new-{i}")))
        for i in range(3):
            nobody = {"email": f"nobody-{i}-{programme.slug}@example.com"}
            requests.append(
                ("unknown_member", purchase(nobody, lines=[line("sku")], id=f"nobody-{i}"))
            )
            requests.append(("idempotency_conflict", _buy(members[i], 99, id=f"earlier-{3 + i}")))
            bad = _buy(members[i], 30, id=f"bad-{i}")
            bad["properties"]["total"] = "31.00"
            requests.append(("validation_error", bad))
            requests.append(("duplicate", earlier[i]))
        random.Random(18).shuffle(requests)
        twins = [_buy(members[15 - i], 70 + i, id=f"twin-{i}") for i in range(2)]
        requests[:0] = [("twin", twin) for twin in twins for _ in range(2)]  # threads 0 to 3
        expected = {payload["id"]: kind for kind, payload in requests}
        payloads = [payload for _, payload in requests]
        shares = [payloads[t::THREADS] for t in range(THREADS)]

        replies = _concurrently([base], headers, shares)
        after = _counters(app)

    assert len(replies) == len(requests)
    for twin in twins:  # one of the two was stored, the other is its duplicate
        pair = sorted(((s, b) for k, s, b in replies if k == twin["id"]), key=lambda p: p[0])
        assert [(status, body["status"]) for status, body in pair] == [
            (200, "duplicate"),
            (201, "accepted"),
        ], pair
        assert pair[0][1] == {**pair[1][1], "status": "duplicate"}
    answers = {key: (status, body) for key, status, body in replies if expected[key] != "twin"}
    assert set(answers) | {t["id"] for t in twins} == set(expected)
    for key, (status, body) in answers.items():
        kind = expected[key]
        if kind == "accepted":
            i = int(key.removeprefix("new-"))
            assert status == 201, body
            assert (body["id"], body["status"]) == (key, "accepted")
            assert body["member_id"] == str(members[i % 16].id)
            assert body["totals"] == {"points": 10 + i}
        elif kind == "duplicate":
            assert status == 200, body
            assert body == {**first_answers[key], "status": "duplicate"}
        else:
            status_of = {"unknown_member": 422, "idempotency_conflict": 409}
            assert status == status_of.get(kind, 422), body
            assert body["error"] == kind
            if kind == "validation_error":
                assert [f["loc"] for f in body["fields"]] == [["body", "properties", "total"]]

    # every event went through a committed group, and groups held several events
    groups, grouped = after[0] - before[0], after[1] - before[1]
    assert grouped == len(requests)
    assert 1 <= groups < len(requests), f"{groups} groups for {len(requests)} events"

    with database.transaction(readonly=True) as session:
        stored = {
            e.idempotency_key: e
            for e in session.scalars(select(Event).where(Event.programme_id == programme.id))
        }
        points = dict(
            session.execute(
                select(Account.member_id, Account.available)
                .join(Wallet, Wallet.id == Account.wallet_id)
                .where(Account.programme_id == programme.id, Wallet.code == "points")
                .where(Account.member_id.is_not(None))
            ).all()
        )
        report = verify(session, programme_id=programme.id)
    accepted = [k for k, kind in expected.items() if kind == "accepted"]
    twin_ids = {t["id"] for t in twins}
    assert set(stored) == {p["id"] for p in earlier} | set(accepted) | twin_ids  # none refused
    for key in accepted:
        assert str(stored[key].id) == answers[key][1]["event_id"]
    for payload in earlier:  # a reused id keeps what it was first sent with
        assert stored[payload["id"]].properties["total"] == payload["properties"]["total"]
    earned: Counter[Any] = Counter()
    for i in range(NEW):
        earned[members[i % 16].id] += 10 + i
    for i in range(6):
        earned[members[i].id] += 50 + i
    for i in range(2):
        earned[members[15 - i].id] += 70 + i
    assert points == earned
    assert report.ok, report.problems


# -- (b) two servers on one PostgreSQL database: caps stay exact ---------------------------------

# The document of tests/integration/test_rule_limits.py (FIRST_N, BUDGET, LIMITED).


def _by_rule(outcome: dict[str, Any]) -> dict[str, int]:
    return {e["rule"]["id"]: int(e["amount"]) for e in outcome["effects"] if e["kind"] == "award"}


def _awarded(database: Database, programme: Programme, rule_id: str) -> tuple[int, int, int]:
    """(transactions, distinct members, points) the ledger holds for ``rule_id``."""
    with database.transaction(readonly=True) as session:
        txns = session.scalars(
            select(LedgerTransaction).where(
                LedgerTransaction.programme_id == programme.id,
                LedgerTransaction.rule_id == rule_id,
                LedgerTransaction.kind == "earn",
            )
        ).all()
        points = session.scalar(
            select(func.coalesce(func.sum(Entry.amount), 0)).where(
                Entry.transaction_id.in_([t.id for t in txns]), Entry.amount > 0
            )
        )
    return len(txns), len({t.member_id for t in txns}), int(points or 0)


@pytest.mark.postgres_only
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.parametrize("round_", range(3))
def test_two_servers_grouping_first_purchases_keep_the_first_n_and_the_budget_exact(
    database: Database, round_: int
) -> None:
    """A programme applied a moment ago (no counter rows yet); 16 members buy at once, half
    through each of two API processes (two apps, two engines) on the same database."""
    programme, members, headers = _programme(database, LIMITED, members=16)
    other = Database.from_url(database.engine.url.render_as_string(hide_password=False))
    apps = [create_app(database), create_app(other)]
    try:
        with serving(apps[0]) as first, serving(apps[1]) as second:
            shares = [[_buy(m, 10, id=f"first-{m.id}")] for m in members]
            replies = _concurrently([first, second], headers, shares)
    finally:
        other.dispose()

    outcomes = [body for _, status, body in replies if status == 201]
    assert len(outcomes) == 16, replies
    assert [o["status"] for o in outcomes] == ["accepted"] * 16
    assert sorted(_by_rule(o).get("first-five", 0) for o in outcomes) == [0] * 11 + [100] * 5
    assert sorted(_by_rule(o).get("launch", 0) for o in outcomes) == [0] * 7 + [10] + [30] * 8
    assert _awarded(database, programme, "first-five") == (FIRST_N, FIRST_N, 100 * FIRST_N)
    assert _awarded(database, programme, "launch") == (9, 9, BUDGET)
    assert _awarded(database, programme, "base") == (16, 16, 160)
    # both processes took part, and every event went through a committed group
    assert [_counters(app)[1] for app in apps] == [8, 8]
    with database.transaction(readonly=True) as session:
        events = session.scalar(
            select(func.count()).select_from(Event).where(Event.programme_id == programme.id)
        )
        report = verify(session, programme_id=programme.id)
    assert events == 16
    assert report.ok, report.problems
