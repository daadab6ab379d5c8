"""A member's traits through the API: what their purchases add up to, RFM, lifecycle, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fidelia.db import Database
from fidelia.models import Programme
from fidelia.rules.demo import programme_document
from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api
from tests.traits.conftest import replay_incremental

# The API reads traits at the real now: purchases are placed relative to it (the hour, so that
# whole days stay whole days between the replay and the read).
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def traits_document(**changes: Any) -> dict[str, Any]:
    section = dict(programme_document()["traits"])
    section.update(changes)
    return {"traits": section}


def send(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def enrol(api: Api) -> str:
    payload = event("enrolment", {"email": f"{uuid.uuid4().hex[:10]}@example.com"},
                    {"profile": {}, "consents": [{"channel": "email", "granted": True}]},
                    occurred_at=NOW - timedelta(days=400))  # fmt: skip
    return str(send(api, payload)["member_id"])


def buy(api: Api, member: str, at: datetime, lines: list[dict[str, Any]], **extra: Any) -> None:
    send(api, purchase({"id": member}, lines=lines, occurred_at=at, **extra))


def traits_of(api: Api, member: str) -> dict[str, Any]:
    response = api.get(f"/members/{member}/traits", scope="read")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_members_traits_sum_up_their_purchases(
    api: Api, database: Database, programme: Programme
) -> None:
    assert api.put("/programme/document", json=traits_document()).status_code == 200
    member = enrol(api)
    # 100 days ago in store, 40 days ago on the web with a discount, 10 days ago in store.
    first = [line("MUS-001", 1, "24.90", category="music"),
             line("LIV-005", 2, "8.90", category="books")]  # fmt: skip
    discounted = [line("MAI-003", 1, "79.00", category="home", discount="15.80")]
    store = {"channel": "store", "store": "lyon-part-dieu"}
    buy(api, member, NOW - timedelta(days=100), first, **store)
    buy(api, member, NOW - timedelta(days=40), discounted, channel="web")
    buy(api, member, NOW - timedelta(days=10), [line("LIV-001", 1, "19.90", category="books")],
        **store)  # fmt: skip

    replay_incremental(database, programme, now=NOW)
    got = traits_of(api, member)

    assert got["purchases_count"] == 3
    assert Decimal(got["spend_total"]) == Decimal("42.70") + Decimal("63.20") + Decimal("19.90")
    assert Decimal(got["average_basket"]) == Decimal("41.93")
    assert got["interval_mean_days"] == 45.0  # (100 - 10) / 2
    assert got["interval_median_days"] == 45.0  # gaps of 60 and 30 days
    assert got["recency_days"] == 10  # computed at read time
    assert [got["windows"][w]["purchases"] for w in ("30d", "90d", "365d")] == [1, 2, 3]
    assert got["lifecycle_stage"] == "active"
    assert got["lifecycle_stage_labels"] == {"fr": "Actif", "en": "Active"}  # the document's
    assert got["promo_purchases_share"] == round(1 / 3, 6)
    assert got["favourite_store"] == "lyon-part-dieu"
    assert got["favourite_channel"] == "store"
    books = got["affinities"]["category"]["books"]
    assert books["purchases"] == 2
    assert Decimal(books["spend"]) == Decimal("37.70")
    assert got["affinities"]["occasion"]["gift"]["purchases"] == 2  # MUS-001 and MAI-003
    assert got["affinities"]["material"]["recycled"]["purchases"] == 1  # LIV-005
    email = next(r for r in got["reachability"] if r["channel"] == "email")
    assert email == {"channel": "email", "address": True, "consent": True, "reachable": True}


def test_windows_and_the_lifecycle_stage_follow_the_day(
    api: Api, database: Database, programme: Programme
) -> None:
    api.put("/programme/document", json=traits_document())
    member = enrol(api)
    prospect = enrol(api)
    buy(api, member, NOW - timedelta(days=200), [line("EPI-001", 1, "16.90")])
    buy(api, member, NOW - timedelta(days=5), [line("EPI-002", 2, "8.50")])

    replay_incremental(database, programme, now=NOW)
    from fidelia.traits.service import traits_row

    with database.transaction(readonly=True) as session:
        row = traits_row(session, member_id=uuid.UUID(member))
        other = traits_row(session, member_id=uuid.UUID(prospect))
    assert row is not None
    assert other is not None
    assert row["windows"]["30"] == {"purchases": 1, "spend": "17.00"}
    assert row["windows"]["365"] == {"purchases": 2, "spend": "33.90"}
    assert row["lifecycle_stage"] == "won-back"  # 195 days without buying, back 5 days ago
    assert row["last_interval_days"] == 195.0
    assert other["lifecycle_stage"] == "prospect"

    later = NOW + timedelta(days=100)
    replay_incremental(database, programme, now=later)
    with database.transaction(readonly=True) as session:
        row = traits_row(session, member_id=uuid.UUID(member))
    assert row is not None
    assert row["windows"]["30"] == {"purchases": 0, "spend": "0.00"}
    assert row["windows"]["90"] == {"purchases": 0, "spend": "0.00"}
    assert row["lifecycle_stage"] == "at-risk"  # 105 days since the last purchase


def test_rfm_scores_are_quintiles_within_the_programme_and_name_a_cell(
    api: Api, database: Database, programme: Programme
) -> None:
    api.put("/programme/document", json=traits_document())
    members = [enrol(api) for _ in range(10)]
    for i, member in enumerate(members):  # member i buys i + 1 times, the last time i days ago
        for k in range(i + 1):
            at = NOW - timedelta(days=i + 7 * k)
            buy(api, member, at, [line(f"sku-{k}", 1, f"{10 * (i + 1)}.00")])

    replay_incremental(database, programme, now=NOW)
    got = [traits_of(api, m)["rfm"] for m in members]

    # 10 purchasers: ranks 1..10 -> scores 1 + 5 * (rank - 1) // 10 = 1,1,2,2,3,3,4,4,5,5.
    assert [g["r"] for g in got] == [1 + 5 * (9 - i) // 10 for i in range(10)]  # 0: most recent
    assert [g["f"] for g in got] == [1 + 5 * i // 10 for i in range(10)]
    assert [g["m"] for g in got] == [1 + 5 * i // 10 for i in range(10)]
    assert got[0]["cell"] == "new"  # r 5, f 1
    assert got[9]["cell"] == "cant-lose"  # r 1, f 5
    assert got[9]["cell_labels"] == {"fr": "À ne pas perdre", "en": "Can't lose"}


def test_a_grid_with_a_hole_or_repeated_windows_is_refused_with_its_path(api: Api) -> None:
    holed = traits_document(rfm={"cells": [{"id": "top", "r": [4, 5]}]})
    response = api.put("/programme/document", json=holed)
    assert response.status_code == 422, response.text
    assert "hole" in response.text
    assert any("traits" in str(f.get("path", f)) for f in response.json()["fields"])

    response = api.put("/programme/document", json=traits_document(windows=[30, 30]))
    assert response.status_code == 422, response.text
    assert "windows" in response.text


def test_the_traits_of_an_unknown_member_are_a_404(api: Api) -> None:
    response = api.get(f"/members/{uuid.uuid4()}/traits", scope="read")
    assert response.status_code == 404


def test_applying_a_traits_section_schedules_the_daily_job_which_scores_and_reschedules(
    api: Api, database: Database, programme: Programme
) -> None:
    from sqlalchemy import select

    from fidelia.models import Job
    from fidelia.traits.jobs import REFRESH_JOB, run_refresh

    api.put("/programme/document", json=traits_document())
    members = [enrol(api) for _ in range(3)]
    for i, member in enumerate(members):
        buy(api, member, NOW - timedelta(days=3 * i + 1), [line("EPI-001", i + 1, "16.90")])
    mine = (Job.kind == REFRESH_JOB, Job.programme_id == programme.id)

    with database.transaction() as session:
        job = session.scalars(select(Job).where(*mine)).one()
        assert job.due_at.time().isoformat() == "00:00:00"  # the next UTC midnight
        run_refresh(session, job)
    got = [traits_of(api, m)["rfm"] for m in members]

    assert [g["r"] for g in got] == [4, 2, 1]  # ranks 3, 2, 1 of 3: 1 + 5 * (rank - 1) // 3
    assert [g["m"] for g in got] == [1, 2, 4]
    with database.transaction(readonly=True) as session:
        due = sorted(j.due_at for j in session.scalars(select(Job).where(*mine)))
    assert len(due) == 2
    assert due[1] - due[0] == timedelta(days=1)
