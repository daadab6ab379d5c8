"""The payment provider's webhook, sent as real signed HTTP requests to the app served by
uvicorn on 127.0.0.1: a subscription created, paid, failed and cancelled by the provider's
events; a redelivery changes nothing; a wrong, missing or stale signature writes nothing."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from fidelia.api.app import create_app
from fidelia.db import Database
from fidelia.models import Member
from fidelia.models.plans import PaymentEvent, Subscription, SubscriptionChange
from fidelia.plans.webhooks import sign
from tests.fixtures.factories import Api, count_rows

DOC: dict[str, Any] = {
    "plans": [
        {
            "code": "club",
            "name": "Club",
            "period": "month",
            "price": "5",
            "currency": "EUR",
            "trial_days": 0,
            "grace_days": 3,
            "benefits": {"earning_multiplier": 2},
        },
    ]
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(database: Database) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(database), host="127.0.0.1", port=port, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def provider(api: Api, served: str) -> tuple[str, str]:
    """The programme's plans applied and a payment endpoint: (its URL on the server, secret)."""
    assert api.put("/programme/document", json=DOC).status_code == 200
    created = api.post("/payments/endpoints", json={"name": "PayCo"})
    assert created.status_code == 201, created.text
    body = created.json()
    path = body["url"].split("/api/v1", 1)[1]
    listed = api.get("/payments/endpoints").json()
    assert [e["secret"] for e in listed] == [None]  # shown once
    return f"{served}/api/v1{path}", body["secret"]


def send(url: str, secret: str, event: dict[str, Any], **override: Any) -> httpx.Response:
    raw = json.dumps(event).encode()
    stamp = override.pop("stamp", int(time.time()))
    headers = {"Content-Type": "application/json"}
    signature = override.pop("signature", sign(secret, raw, stamp))
    if signature is not None:
        headers["Fidelia-Signature"] = signature
    return httpx.post(url, content=override.pop("body", raw), headers=headers, timeout=10)


def test_the_providers_events_drive_the_subscription(
    provider: tuple[str, str], member_factory: Callable[..., Member], database: Database
) -> None:
    url, secret = provider
    member = member_factory()
    ref = f"sub_{uuid.uuid4().hex[:8]}"
    created = {
        "id": "evt_1",
        "type": "subscription.created",
        "subscription": ref,
        "member_id": str(member.id),
        "plan": "club",
    }
    first = send(url, secret, created)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "applied"
    assert first.json()["subscription"]["status"] == "active"
    assert first.headers["Fidelia-Replay"] == "false"

    again = send(url, secret, created)  # the provider redelivers
    assert again.status_code == 200
    assert again.headers["Fidelia-Replay"] == "true"
    assert again.json()["id"] == first.json()["id"]

    failed = send(url, secret, {"id": "evt_2", "type": "payment.failed", "subscription": ref})
    assert failed.json()["subscription"]["status"] == "past_due"
    assert failed.json()["subscription"]["benefits_active"] is True
    paid = send(
        url,
        secret,
        {
            "id": "evt_3",
            "type": "payment.succeeded",
            "subscription": ref,
            "amount": "5",
            "currency": "EUR",
        },
    )
    assert paid.json()["subscription"]["status"] == "active"
    wrong_currency = send(
        url,
        secret,
        {"id": "evt_4", "type": "payment.succeeded", "subscription": ref, "currency": "USD"},
    )
    assert wrong_currency.status_code == 200
    assert wrong_currency.json()["outcome"] == "validation_error"
    cancelled = send(
        url, secret, {"id": "evt_5", "type": "subscription.cancelled", "subscription": ref}
    )
    assert cancelled.json()["subscription"]["status"] == "cancelled"
    late = send(url, secret, {"id": "evt_6", "type": "payment.succeeded", "subscription": ref})
    assert late.json()["outcome"] == "subscription_ended"
    unknown = send(url, secret, {"id": "evt_7", "type": "payment.failed", "subscription": "nope"})
    assert unknown.json()["outcome"] == "not_found"

    with database.transaction(readonly=True) as session:
        [sub] = session.query(Subscription).filter(Subscription.member_id == member.id).all()
        causes = [
            (c.to_status, c.cause, c.payment_event_id is not None)
            for c in session.query(SubscriptionChange)
            .filter(SubscriptionChange.subscription_id == sub.id)
            .order_by(SubscriptionChange.at, SubscriptionChange.id)
        ]
    assert causes == [
        ("active", "payment", True),
        ("past_due", "payment", True),
        ("active", "payment", True),
        ("cancelled", "payment", True),
    ]


def test_a_signature_mismatch_writes_nothing(
    api: Api, provider: tuple[str, str], member_factory: Callable[..., Member], database: Database
) -> None:
    url, secret = provider
    member = member_factory()
    event = {
        "id": "evt_x",
        "type": "subscription.created",
        "subscription": "sub_x",
        "member_id": str(member.id),
        "plan": "club",
    }
    raw = json.dumps(event).encode()
    stamp = int(time.time())
    tampered = json.dumps({**event, "plan": "club", "id": "evt_y"}).encode()
    cases = [
        {"signature": sign("whsec_wrong", raw, stamp)},  # another secret
        {"signature": None},  # no header
        {"signature": sign(secret, raw, stamp - 3600), "stamp": stamp - 3600},  # an old delivery
        {"body": tampered},  # a body changed on the way
        {"signature": "t=abc,v1=00"},
    ]
    for case in cases:
        response = send(url, secret, event, **case)
        assert response.status_code == 401, (case, response.text)
        assert response.json()["error"] == "signature_mismatch"
    elsewhere = url.replace(url.split("/")[-2], str(uuid.uuid4()))
    signed = {"Fidelia-Signature": sign(secret, raw, stamp)}
    wrong_endpoint = httpx.post(elsewhere, content=raw, headers=signed)
    assert wrong_endpoint.status_code == 404
    # signed but not a valid event: 422 naming the field, nothing stored
    bad = send(url, secret, {"id": "evt_z", "type": "subscription.created", "subscription": "s"})
    assert bad.status_code == 422, bad.text
    assert count_rows(database, PaymentEvent, PaymentEvent.programme_id == api.programme.id) == 0
    assert count_rows(database, Subscription, Subscription.member_id == member.id) == 0
