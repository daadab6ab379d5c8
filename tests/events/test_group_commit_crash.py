"""``fidelia serve`` killed with SIGKILL while groups of ``POST /events`` commit (issue 18): no
event it acknowledged is lost, nothing is stored twice or half, and resending every event after
the restart leaves exactly one stored event per id.

The server is a real process on a database of its own. 16 keep-alive clients send purchases
until about 100 have been answered, then the server is killed with requests in flight. Some of
the events that got no answer may have committed (the group committed, the answers never left):
they come back as duplicates when resent. The programme earns 1 point per euro and 50 points on a
member's first purchase, so every balance is known from the events stored, whatever the order
and grouping they were applied in.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fidelia.auth import service as apikeys
from fidelia.auth.schemas import Scope
from fidelia.db import Database
from fidelia.ledger.verify import verify
from fidelia.models import Account, Event, LedgerTransaction, Member, Programme, Wallet
from fidelia.programmes import documents
from tests.fixtures import processes
from tests.fixtures.events import line, purchase, ref
from tests.fixtures.factories import make_member, make_programme

CLIENTS, MEMBERS, ACKNOWLEDGED_BEFORE_KILL = 16, 24, 100
FIRST_PURCHASE = 50
DOCUMENT: dict[str, Any] = {
    "rules": [
        {"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}},
        {
            "id": "first",
            "name": "+50 points on the first purchase",
            "first_time": "purchase",
            "award": {"kind": "fixed", "amount": FIRST_PURCHASE},
        },
    ]
}


@dataclass
class Setup:
    programme: Programme
    members: list[Member]
    integration: str
    read: str


def _prepare(database: Database) -> Setup:
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=DOCUMENT, actor="test")
    members = [make_member(database, programme) for _ in range(MEMBERS)]
    with database.transaction() as session:
        _, integration = apikeys.create(
            session, programme=programme, name="till", scope=Scope.integration
        )
        _, read = apikeys.create(session, programme=programme, name="audit", scope=Scope.read)
    return Setup(programme, members, integration, read)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(database: Database, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``fidelia serve`` on a free port, once it answers; (process, base URL)."""
    port = _free_port()
    server = processes.start(database, log, "serve", "--port", str(port), "--no-embedded-worker")
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert server.poll() is None, log.read_text(errors="replace")
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        processes.wait_for(healthy, timeout=120)
    except BaseException:
        _stop(server)
        raise
    return server, base


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


@dataclass
class Traffic:
    """What the clients sent and what came back."""

    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> payload
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    no_answer: dict[str, str] = field(default_factory=dict)  # event id -> the error
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.answers)


def _payload(setup: Setup, client: int, n: int) -> dict[str, Any]:
    member = setup.members[(client * 7 + n) % MEMBERS]
    euros = 1 + (client * 13 + n) % 40
    return purchase(
        ref(member), id=f"till-{client:02d}-{n:04d}", lines=[line("sku", 1, f"{euros}.00")]
    )


def _flood(
    base: str, setup: Setup, traffic: Traffic, stop: threading.Event
) -> list[threading.Thread]:
    """16 clients send purchases until the server stops answering (or ``stop``)."""

    def client(c: int) -> None:
        headers = {"Authorization": f"Bearer {setup.integration}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                payload = _payload(setup, c, n)
                with traffic.lock:
                    traffic.sent[payload["id"]] = payload
                try:
                    response = http.post("/api/v1/events", json=payload)
                except httpx.TransportError as exc:  # the server died: this one has no answer
                    with traffic.lock:
                        traffic.no_answer[payload["id"]] = type(exc).__name__
                    return
                with traffic.lock:
                    traffic.answers[payload["id"]] = (response.status_code, response.json())

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    return threads


def _resend(base: str, setup: Setup, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Send every payload again from 16 clients; id -> (status, body)."""
    answers: dict[str, Any] = {}
    lock = threading.Lock()

    def client(share: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {setup.integration}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            for payload in share:
                response = http.post("/api/v1/events", json=payload)
                with lock:
                    answers[payload["id"]] = (response.status_code, response.json())

    threads = [
        threading.Thread(target=client, args=(payloads[c::CLIENTS],)) for c in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return answers


def _euros(payload: dict[str, Any]) -> int:
    return int(float(payload["properties"]["total"]))


def _expected_balances(payloads: list[dict[str, Any]]) -> dict[str, int]:
    """1 point per euro, and 50 for a member's first purchase: member id -> points."""
    balances: Counter[str] = Counter()
    for payload in payloads:
        balances[payload["member"]["id"]] += _euros(payload)
    return {m: points + FIRST_PURCHASE for m, points in balances.items()}


def _check_store(
    database: Database, programme: Programme, traffic: Traffic, acknowledged: dict[str, Any]
) -> dict[str, Event]:
    """The database holds each acknowledged event once, only events that were sent, each with
    all its postings and no posting without its event; balances follow from the events."""
    with database.transaction(readonly=True) as session:
        events = session.scalars(select(Event).where(Event.programme_id == programme.id)).all()
        txns = session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.programme_id == programme.id)
        ).all()
        balances = {
            str(account.member_id): account.available
            for account in session.scalars(
                select(Account)
                .join(Wallet, Wallet.id == Account.wallet_id)
                .where(
                    Account.programme_id == programme.id,
                    Account.member_id.is_not(None),
                    Wallet.code == "points",
                )
            )
        }
        report = verify(session, programme_id=programme.id)
    assert report.ok, report.problems

    keys = Counter(e.idempotency_key for e in events)
    assert [k for k, n in keys.items() if n > 1] == [], "an event was stored twice"
    stored = {e.idempotency_key: e for e in events}
    assert set(stored) <= set(traffic.sent), "an event nobody sent"
    lost = set(acknowledged) - set(stored)
    assert lost == set(), f"{len(lost)} acknowledged events lost"
    for key, outcome in acknowledged.items():
        assert str(stored[key].id) == outcome["event_id"]
        assert str(stored[key].member_id) == outcome["member_id"]
        assert stored[key].properties["total"] == traffic.sent[key]["properties"]["total"]

    # no half-written event: each has its earn postings (base, and first for the first
    # purchase), each posting has its event, and each event earned what its answer said
    by_event: dict[str, list[str]] = {}
    assert {t.kind for t in txns} <= {"earn"}
    for txn in txns:
        assert txn.source_type == "event"
        assert txn.rule_id is not None
        by_event.setdefault(txn.source_id or "", []).append(txn.rule_id)
    assert all(len(set(rules)) == len(rules) for rules in by_event.values()), "posted twice"
    assert set(by_event) == {str(e.id) for e in events}, "postings without their event"
    assert all("base" in rules for rules in by_event.values()), "an event without its postings"
    firsts = Counter(str(t.member_id) for t in txns if t.rule_id == "first")
    assert set(firsts.values()) == {1}
    assert set(firsts) == {str(e.member_id) for e in events}
    for key, outcome in acknowledged.items():
        rules = {effect["rule"]["id"] for effect in outcome["effects"]}
        assert rules == set(by_event[str(stored[key].id)]), key

    expected = _expected_balances([traffic.sent[k] for k in stored])
    assert balances == {m: expected.get(m, 0) for m in balances}
    assert {m for m, points in balances.items() if points} == set(expected)
    return stored


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql"], indirect=True)
def test_a_server_killed_while_groups_commit_loses_no_acknowledged_event(
    fresh_database: Database, tmp_path: Path
) -> None:
    database = fresh_database
    setup = _prepare(database)
    traffic = Traffic()
    stop = threading.Event()

    server, base = _serve(database, tmp_path / "first.log")
    clients: list[threading.Thread] = []
    try:
        clients = _flood(base, setup, traffic, stop)
        processes.kill_when(server, lambda: traffic.acknowledged() >= ACKNOWLEDGED_BEFORE_KILL)
    finally:
        stop.set()
        _stop(server)
        for thread in clients:
            thread.join(timeout=120)

    unexpected = {k: a for k, a in traffic.answers.items() if a[0] != 201}
    assert unexpected == {}, "every event sent before the crash is new and valid"
    acknowledged = {k: body for k, (_, body) in traffic.answers.items()}
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
    assert traffic.no_answer, "the server was not killed with requests in flight"
    assert set(traffic.sent) == set(acknowledged) | set(traffic.no_answer)

    # after the crash, before any restart: the database alone, and `fidelia ledger verify`
    stored = _check_store(database, setup.programme, traffic, acknowledged)
    verifying = processes.start(database, tmp_path / "verify.log", "ledger", "verify")

    try:
        server, base = _serve(database, tmp_path / "second.log")
    finally:
        verifying.wait(timeout=300)
    try:
        verified = (tmp_path / "verify.log").read_text(errors="replace")
        assert verifying.returncode == 0, verified
        assert "ledger OK" in verified

        # every acknowledged event is there, as it was answered
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {setup.read}"}, timeout=60
        ) as http:
            for key, outcome in acknowledged.items():
                found = http.get(f"/api/v1/events/{key}")
                assert found.status_code == 200, found.text
                assert found.json()["id"] == outcome["event_id"]

        # the tills resend everything, answered or not
        payloads = list(traffic.sent.values())
        answers = _resend(base, setup, payloads)
    finally:
        _stop(server)

    assert set(answers) == set(traffic.sent)
    for key, (status, body) in answers.items():
        if key in stored:  # committed before the crash, answered or not: a duplicate
            assert (status, body["status"]) == (200, "duplicate"), (key, body)
            assert body["event_id"] == str(stored[key].id)
        else:  # never committed: accepted now
            assert (status, body["status"]) == (201, "accepted"), (key, body)
        if key in acknowledged:  # the same outcome as the first answer
            first = {k: v for k, v in acknowledged[key].items() if k != "status"}
            assert {k: v for k, v in body.items() if k != "status"} == first
    resent = {k: body for k, (_, body) in answers.items()}
    everything = Traffic(sent=traffic.sent)
    final = _check_store(database, setup.programme, everything, resent)
    assert set(final) == set(traffic.sent)
