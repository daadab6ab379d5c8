"""Rules read ``traits.*``: a bonus for the RFM champions fires for a champion only (the traits
as the daily job left them before the batch); a rule naming an unknown trait is refused at apply
with its path, and nothing is saved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.models import Programme, ProgrammeVersion
from fidelia.rules.demo import programme_document
from fidelia.traits.rebuild import refresh
from fidelia.traits.service import traits_row
from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api
from tests.traits.conftest import fresh

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
CHAMPIONS = {"field": "traits.rfm_cell", "op": "eq", "value": "champions"}


def document(when: dict[str, Any]) -> dict[str, Any]:
    return {
        "traits": programme_document()["traits"],
        "rules": [
            {"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}},
            {
                "id": "champions-bonus",
                "name": "+50 points per purchase for the champions",
                "when": when,
                "award": {"kind": "fixed", "amount": 50},
            },
        ],
    }


def send(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def enrol(api: Api) -> str:
    payload = event("enrolment", {"email": f"{uuid.uuid4().hex[:10]}@example.com"},
                    {"profile": {}}, occurred_at=NOW - timedelta(days=400))  # fmt: skip
    return str(send(api, payload)["member_id"])


def buy(api: Api, member: str, days_ago: int, price: str = "10.00") -> dict[str, Any]:
    lines = [line("SKU-1", 1, price)]
    return send(api, purchase({"id": member}, lines=lines, occurred_at=NOW - timedelta(days_ago)))


def bonus(outcome: dict[str, Any]) -> int:
    awards = [e for e in outcome["effects"] if e["kind"] == "award"]
    return sum(int(a["amount"]) for a in awards if a["rule"]["id"] == "champions-bonus")


def test_a_rule_for_the_champions_fires_for_a_champion_only(
    api: Api, database: Database, programme: Programme
) -> None:
    assert api.put("/programme/document", json=document(CHAMPIONS)).status_code == 200
    champion = enrol(api)
    others = [enrol(api) for _ in range(4)]
    assert [bonus(buy(api, champion, d, "90.00")) for d in (30, 20, 3)] == [0, 0, 0]
    for i, member in enumerate(others):
        buy(api, member, 300 - 40 * i)
    with database.transaction() as session:
        refresh(session, programme=fresh(session, programme), now=NOW)
    with database.transaction(readonly=True) as session:
        cells = {m: (traits_row(session, member_id=uuid.UUID(m)) or {}).get("rfm_cell")
                 for m in (champion, *others)}  # fmt: skip
    assert cells[champion] == "champions"
    assert all(cells[m] != "champions" for m in others), cells

    assert bonus(buy(api, champion, 1)) == 50
    assert [bonus(buy(api, m, 1)) for m in others] == [0, 0, 0, 0]


def test_a_rule_naming_an_unknown_trait_is_refused_with_its_path(
    api: Api, database: Database, programme: Programme
) -> None:
    bad = {"all": [CHAMPIONS, {"field": "traits.shoe_size", "op": "gte", "value": 42}]}
    response = api.put("/programme/document", json=document(bad))
    assert response.status_code == 422, response.text
    field = response.json()["fields"][0]
    assert field["loc"] == ["body", "rules", 1, "when", "all", 1, "field"], field
    assert "traits.shoe_size" in field["msg"]
    window = {"field": "traits.frequency_45d", "op": "gte", "value": 1}  # 45 is not a window
    response = api.put("/programme/document", json=document(window))
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "rules", 1, "when", "field"]
    with database.transaction(readonly=True) as session:
        saved = session.scalar(
            select(func.count())
            .select_from(ProgrammeVersion)
            .where(ProgrammeVersion.programme_id == programme.id)
        )
    assert saved == 0
