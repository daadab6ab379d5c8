"""Recommendations of a programme on both databases: the demo generator's events imported
through the real import, interactions aggregated in SQL (checked against the file), trained
and served through the API."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelia.analytics import recommend_service
from fidelia.db import Database
from fidelia.demo import generator
from fidelia.intake.imports import run_import
from fidelia.models import (
    Job,
    Member,
    MemberIdentity,
    MemberRecommendation,
    Programme,
    RecommendationModel,
)
from tests.fixtures.factories import Api, make_member, make_programme


@pytest.fixture(scope="module")
def shop(database: Database, tmp_path_factory: pytest.TempPathFactory) -> tuple[Programme, Path]:
    programme = make_programme(database)
    path = tmp_path_factory.mktemp("gen") / "events.jsonl"
    config = generator.GeneratorConfig(members=250, months=6, seed=11)
    generator.write_jsonl(generator.generate_events(config), path)
    report = run_import(database, programme_id=programme.id, path=path, kind="events",
                        chunk_size=1000, rejects_path=path.with_suffix(".rejects"))  # fmt: skip
    assert report.accepted > 1000
    return programme, path


def file_counts(
    path: Path, member_of: dict[tuple[str, str], str]
) -> dict[tuple[str, str], list[int]]:
    """(member id, sku) -> [lines before the member's last purchase, lines in it], from the
    file, each purchase's member found by the identity it names (card, email or phone)."""
    purchases: dict[str, list[dict]] = defaultdict(list)
    for text in path.read_text().splitlines():
        event = json.loads(text)
        if event["type"] != "purchase":
            continue
        kind, value = next(iter(event["member"].items()))
        purchases[member_of[(kind, str(value))]].append(event)
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for member, events in purchases.items():
        events.sort(key=lambda e: datetime.fromisoformat(e["occurred_at"]))
        for n, event in enumerate(events):
            for line in event["properties"]["lines"]:
                out[(member, line["sku"])][1 if n == len(events) - 1 else 0] += 1
    return out


def test_sql_interactions_match_the_file(database: Database, shop: tuple[Programme, Path]) -> None:
    programme, path = shop
    with database.transaction(readonly=True) as session:
        rows = recommend_service.interactions(session, programme_id=programme.id, item="sku")
        identities = session.execute(
            select(MemberIdentity.kind, MemberIdentity.value, MemberIdentity.member_id).where(
                MemberIdentity.programme_id == programme.id
            )
        ).all()
    member_of = {(kind, value): str(member) for kind, value, member in identities}
    got = {(str(m), s): [int(b), int(last)] for m, s, b, last in rows}
    expected = file_counts(path, member_of)
    assert len(expected) > 500
    # Same lines per (member, sku) before and in the member's last purchase: SQL's ROW_NUMBER
    # order is the file's time order.
    assert got == expected


def test_train_serve_and_evaluate(
    database: Database, shop: tuple[Programme, Path], api_factory: Callable[[Programme], Api]
) -> None:
    programme, _ = shop
    api = api_factory(programme)
    assert api.post("/analytics/recommendations/train", json={}, scope="read").status_code == 403
    trained = api.post("/analytics/recommendations/train", json={"item": "sku", "k": 5})
    assert trained.status_code == 200, trained.text
    models = {m["kind"]: m for m in trained.json()}
    assert set(models) == {"sku:popularity", "sku:co_purchase", "sku:als"}
    defaults = [m for m in models.values() if m["is_default"]]
    assert len(defaults) == 1
    best = defaults[0]
    baseline = models["sku:popularity"]
    if best["kind"] != "sku:popularity":
        assert best["evaluation"]["precision_at_k"] > baseline["evaluation"]["precision_at_k"]
    listed = api.get("/analytics/recommendations", scope="read")
    assert [m["kind"] for m in listed.json()] == sorted(models)

    with database.transaction(readonly=True) as session:
        buyer = session.scalar(
            select(MemberRecommendation.member_id)
            .where(MemberRecommendation.programme_id == programme.id)
            .limit(1)
        )
        stored = session.scalar(
            select(func.count(func.distinct(MemberRecommendation.member_id))).where(
                MemberRecommendation.programme_id == programme.id
            )
        )
    assert stored == best["settings"]["members"]
    got = api.get(f"/members/{buyer}/recommendations", params={"k": 3}, scope="read")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["model"] == best["kind"].split(":")[1]
    assert [i["rank"] for i in body["items"]] == [1, 2, 3]
    assert all(i["reason"] for i in body["items"])

    newcomer = make_member(database, programme)
    fresh = api.get(f"/members/{newcomer.id}/recommendations", scope="read").json()
    assert fresh["model"] == "popularity"
    assert fresh["items"][0]["item"] == best["settings"]["popular"][0]["item"]
    assert fresh["items"][0]["reason"].startswith("popular: bought by")

    # Retraining replaces, never duplicates.
    assert api.post("/analytics/recommendations/train", json={"daily": True}).status_code == 200
    with database.transaction(readonly=True) as session:
        again = session.scalar(
            select(func.count())
            .select_from(MemberRecommendation)
            .where(
                MemberRecommendation.programme_id == programme.id,
                MemberRecommendation.member_id == buyer,
            )
        )
    assert again == recommend_service.STORED
    with database.transaction() as session:
        kind = recommend_service.TRAIN_JOB
        job = session.scalar(select(Job).where(Job.programme_id == programme.id, Job.kind == kind))
        assert job is not None
        recommend_service.run_train(session, job)  # as the worker runs it
    with database.transaction(readonly=True) as session:
        scheduled = session.scalar(select(func.count()).select_from(Job).where(
            Job.programme_id == programme.id, Job.kind == recommend_service.TRAIN_JOB))  # fmt: skip
        defaults = session.scalar(select(func.count()).select_from(RecommendationModel).where(
            RecommendationModel.programme_id == programme.id,
            RecommendationModel.is_default.is_(True)))  # fmt: skip
    assert scheduled == 2
    assert defaults == 1


def test_bad_requests(
    database: Database, shop: tuple[Programme, Path], api_factory: Callable[[Programme], Api]
) -> None:
    programme, _ = shop
    api = api_factory(programme)
    other = make_programme(database)
    stranger = make_member(database, other)
    assert api.get(f"/members/{stranger.id}/recommendations", scope="read").status_code == 404
    with database.transaction(readonly=True) as session:
        member = session.scalar(select(Member.id).where(Member.programme_id == programme.id))
    bad = api.get(f"/members/{member}/recommendations", params={"item": "colour"}, scope="read")
    assert bad.status_code == 422
    assert "item" in bad.text
    assert api.get(f"/members/{member}/recommendations", params={"k": 0},
                   scope="read").status_code == 422  # fmt: skip
    assert api.post("/analytics/recommendations/train", json={"k": 0}).status_code == 422


def test_thin_programme_is_a_422_and_nothing_is_written(
    database: Database, api_factory: Callable[[Programme], Api]
) -> None:
    programme = make_programme(database)
    api = api_factory(programme)
    got = api.post("/analytics/recommendations/train", json={})
    assert got.status_code == 422
    assert got.json()["fields"][0]["loc"][-1] == "items"
    member = make_member(database, programme)
    untrained = api.get(f"/members/{member.id}/recommendations", scope="read")
    assert untrained.status_code == 404
    assert "no recommendation model trained" in untrained.json()["detail"]
