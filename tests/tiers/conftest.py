"""Tier fixtures: a programme document with three levels, and a member's side of the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api

JAN = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)


def document(**tiers: Any) -> dict[str, Any]:
    """Bronze / Silver (300 €) / Gold (1,000 € or 100 status points) / Black (invitation)."""
    section = {
        "window": "calendar_year",
        "combine": "any",
        "levels": [
            {"code": "bronze", "name": "Bronze"},
            {"code": "silver", "name": "Silver", "requires": {"spend": "300"}},
            {
                "code": "gold",
                "name": "Gold",
                "requires": {"spend": "1000", "status_points": 100},
                "perks": [{"code": "lounge", "description": "Free delivery"}],
            },
            {"code": "black", "name": "Black", "invitation_only": True},
        ],
    }
    section.update(tiers)
    return {
        "rules": [
            {
                "id": "base",
                "name": "1 € = 1 point, more for higher tiers",
                "award": {"kind": "spend", "rate": 1, "rate_by_tier": {"silver": 2, "gold": 3}},
            },
            {
                "id": "status",
                "name": "1 status point per 10 €",
                "award": {"kind": "spend", "wallet": "status", "rate": "0.1"},
            },
        ],
        "tiers": section,
    }


def buy(api: Api, member_id: str, amount: str, at: datetime, order: str | None = None) -> Any:
    payload = purchase({"id": member_id}, order_id=order, lines=[line("sku", 1, amount)],
                       occurred_at=at)  # fmt: skip
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    return response.json()


def send(api: Api, payload: dict[str, Any]) -> Any:
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    return response.json()


def tier_of(api: Api, member_id: str) -> Any:
    response = api.get(f"/members/{member_id}/tier", scope="read")
    assert response.status_code == 200, response.text
    return response.json()


def enrol(api: Api, at: datetime = JAN) -> str:
    payload = event("enrolment", {"email": f"{at.timestamp()}-{id(api)}@example.com"},
                    {"profile": {}, "consents": []}, occurred_at=at)  # fmt: skip
    return str(send(api, payload)["member_id"])


def requalify(api: Api, at: datetime) -> Any:
    response = api.post("/tiers/requalify", json={"at": at.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()
