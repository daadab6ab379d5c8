"""Portal test helpers: a programme document (welcome points, tiers, rewards, a badge and a
challenge), a phone-like browser client with its own cookies that reads the form tokens of
the pages it gets, and signing in through the real code sent to a real local SMTP server."""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fidelia.api.app import create_app
from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.programmes import documents
from tests.fixtures.events import line, purchase
from tests.users.mailbox import Inbox, cheap_password_hashes, smtp

__all__ = ["cheap_password_hashes", "smtp"]

_TOKEN = re.compile(r'name="(csrf_token|form_token|nonce)" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")


def document(**portal: Any) -> dict[str, Any]:
    """Welcome 150 points, 1 point per euro, tiers Member / Silver (300 status points) / Gold,
    a voucher (200 points), a donation (50), a sold-out bag, a gold-only lounge; a badge and
    a challenge on purchases."""
    return {
        "rules": [
            {
                "id": "welcome",
                "name": "Welcome",
                "event_type": "enrolment",
                "award": {"kind": "fixed", "amount": 150},
            },
            {"id": "base", "name": "1 point per euro", "award": {"kind": "spend", "rate": 1}},
            {
                "id": "status",
                "name": "Status points",
                "award": {"kind": "spend", "wallet": "status", "rate": 1},
            },
        ],
        "tiers": {
            "window": "rolling_12_months",
            "levels": [
                {"code": "member", "name": "Member", "labels": {"fr": "Membre"}},
                {
                    "code": "silver",
                    "name": "Silver",
                    "labels": {"fr": "Argent"},
                    "requires": {"status_points": 300},
                },
                {
                    "code": "gold",
                    "name": "Gold",
                    "labels": {"fr": "Or"},
                    "requires": {"status_points": 1000},
                },
            ],
        },
        "voucher_pools": [
            {
                "code": "bon-10",
                "name": "10 € voucher",
                "pattern": "BON10-XXXX-XXXX",
                "discount_type": "amount",
                "discount_value": "10",
            }
        ],
        "rewards": [
            {
                "code": "voucher-10",
                "kind": "voucher",
                "name": "10 € voucher",
                "labels": {"fr": "Bon de 10 €"},
                "cost_points": 200,
                "pool": "bon-10",
            },
            {
                "code": "trees",
                "kind": "donation",
                "name": "Plant a tree",
                "labels": {"fr": "Planter un arbre"},
                "cost_points": 50,
                "association": "Forests Now",
                "value": "1.00",
            },
            {"code": "bag", "kind": "product", "name": "Tote bag", "cost_points": 100, "stock": 0},
            {
                "code": "lounge",
                "kind": "experience",
                "name": "Lounge",
                "cost_points": 100,
                "eligible_tiers": ["gold"],
            },
        ],
        "badges": [
            {
                "code": "first-buy",
                "name": "First purchase",
                "labels": {"fr": "Premier achat"},
                "event_type": "purchase",
            }
        ],
        "challenges": [
            {
                "code": "three-visits",
                "name": "Three visits",
                "labels": {"fr": "Trois visites"},
                "goals": [{"event_type": "purchase", "target": 3}],
                "reward": {"points": 100},
            }
        ],
        "portal": {"name": "Club Test", **portal},
    }


def apply(database: Database, programme: Programme, raw: dict[str, Any]) -> Programme:
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=raw, actor="test")
        live = session.get(Programme, programme.id)
        assert live is not None
        return live


class Phone:
    """A TestClient with its own cookie jar; ``post`` sends the page's tokens."""

    def __init__(
        self, app: FastAPI, programme: Programme, lang: str = "en", ip: str | None = None
    ) -> None:
        # each phone its own address: throttling per IP holds across the test database
        self.ip = (
            ip or f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        )
        self.client = TestClient(
            app, follow_redirects=False, headers={"accept-language": lang}, client=(self.ip, 50000)
        )
        self.base = f"/portal/{programme.slug}"
        self.tokens: dict[str, str] = {}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(self.base + path, **kwargs)
        self.tokens.update(dict(_TOKEN.findall(response.text)))
        return response

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, tokens: bool = True
    ) -> httpx.Response:
        form = dict(data or {})
        if tokens:
            for name in ("csrf_token", "form_token"):
                if name in self.tokens:
                    form.setdefault(name, self.tokens[name])
        response = self.client.post(self.base + path, data=form)
        self.tokens.update(dict(_TOKEN.findall(response.text)))
        return response

    def ask_code(self, identity: str) -> httpx.Response:
        self.get("/sign-in")
        return self.post("/sign-in", {"identity": identity})

    def sign_in(self, email: str, inbox: Inbox) -> httpx.Response:
        before = len(inbox.messages)
        assert self.ask_code(email).status_code == 200
        assert len(inbox.messages) == before + 1, "no code was sent"
        response = self.post("/code", {"identity": email, "code": last_code(inbox)})
        assert response.status_code == 303, response.text
        self.get("/")  # a page with the session's CSRF token
        return response


def last_code(inbox: Inbox) -> str:
    message = inbox.messages[-1]
    body = message.get_payload(decode=True)
    if body is None:
        body = message.get_payload(0).get_payload(decode=True)
    found = CODE.search(body.decode())
    assert found is not None
    return found.group(1)


@pytest.fixture
def portal_app(database: Database) -> FastAPI:
    return create_app(database)


@pytest.fixture
def club(database: Database, programme: Programme) -> Programme:
    return apply(database, programme, document())


def enrol(api: Any, email: str | None = None, **fields: Any) -> str:
    """Enrol through ``POST /members`` (the welcome rule runs); the member's id."""
    body = {"email": email or f"m-{uuid.uuid4().hex[:12]}@example.com", **fields}
    response = api.post("/members", json=body, scope="integration")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def buy(api: Any, member_id: str, amount: str) -> None:
    payload = purchase({"id": member_id}, lines=[line("sku", 1, amount)], occurred_at=utcnow())
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text


def signed_in(
    portal_app: FastAPI,
    programme: Programme,
    api: Any,
    inbox: Inbox,
    lang: str = "en",
    **fields: Any,
) -> tuple[Phone, str, str]:
    """A member enrolled through the API and signed in on their phone: (phone, id, email)."""
    email = f"m-{uuid.uuid4().hex[:12]}@example.com"
    member_id = enrol(api, email, **fields)
    phone = Phone(portal_app, programme, lang)
    phone.sign_in(email, inbox)
    return phone, member_id, email
