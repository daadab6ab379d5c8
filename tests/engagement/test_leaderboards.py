"""Leaderboards: scores kept by the intake, opt-in and masked names, ties to the first, a
member's rank with neighbours, boards by store, end-of-period rewards paid once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.engagement.leaderboards import CLOSE_JOB, run_close
from fidelia.models import Job, Programme
from fidelia.models.engagement_plus import LeaderboardCount, LeaderboardPayout, LeaderboardScore
from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api

T = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
DOCUMENT: dict[str, Any] = {
    "rules": [
        {"id": "base", "name": "1 point per euro", "event_type": "purchase",
         "award": {"kind": "spend", "rate": 1}},
    ],
    "badges": [{"code": "champion", "name": "Champion of the month"}],
    "leaderboards": [
        {"code": "monthly", "name": "Points this month", "period": "month",
         "metric": {"kind": "points"},
         "rewards": [{"ranks": [1, 1], "points": 1000, "badge": "champion"},
                     {"ranks": [2, 3], "points": 200}]},
        {"code": "reviews", "name": "Reviews per store", "period": "week", "by": "store",
         "metric": {"kind": "events", "event_type": "review"}},
    ],
}  # fmt: skip


def setup(api: Api) -> None:
    response = api.put("/programme/document", json=DOCUMENT)
    assert response.status_code == 200, response.text


def member(api: Api, first: str, last: str, *, opt_in: bool = True, name: str | None = None) -> str:
    response = api.post(
        "/members",
        json={"email": f"{first}-{uuid.uuid4().hex[:6]}@example.com", "first_name": first,
              "last_name": last},
        scope="integration",
    )  # fmt: skip
    assert response.status_code == 201, response.text
    member_id = str(response.json()["id"])
    if opt_in:
        body = {"opted_in": True, "display_name": name}
        put = api.put(f"/members/{member_id}/leaderboard-profile", json=body, scope="integration")
        assert put.status_code == 200, put.text
    return member_id


def buy(api: Api, member_id: str, amount: str, at: datetime) -> None:
    payload = purchase({"id": member_id}, lines=[line("x", 1, amount)], occurred_at=at)
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text


def board(api: Api, code: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/leaderboards/{code}", params=params, scope="read")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_top_ranks_opted_in_members_with_ties_to_the_first(api: Api) -> None:
    setup(api)
    ann = member(api, "Ann", "Lee", name="Queen Ann")
    bob = member(api, "Bob", "Marsh")
    cat = member(api, "Cat", "Noor")
    shy = member(api, "Dan", "Shy", opt_in=False)
    buy(api, bob, "50.00", T)
    buy(api, ann, "30.00", T + timedelta(hours=1))
    buy(api, ann, "20.00", T + timedelta(hours=2))  # 50 too, reached later than Bob
    buy(api, cat, "80.00", T + timedelta(hours=3))
    buy(api, shy, "500.00", T + timedelta(hours=4))

    top = board(api, "monthly", period="2026-06")

    assert [(e["rank"], e["display_name"], e["score"]) for e in top["entries"]] == [
        (1, "C*** N.", "80.00"),
        (2, "B*** M.", "50.00"),
        (3, "Queen Ann", "50.00"),
    ]
    assert all(e["member_id"] is None for e in top["entries"])
    rank = api.get(
        f"/leaderboards/monthly/members/{ann}", params={"period": "2026-06", "neighbours": 1},
        scope="read",
    ).json()  # fmt: skip
    assert (rank["rank"], rank["score"]) == (3, "50.00")
    assert [e["rank"] for e in rank["above"]] == [2]
    assert rank["below"] == []
    hidden = api.get(
        f"/leaderboards/monthly/members/{shy}", params={"period": "2026-06"}, scope="read"
    ).json()
    assert (hidden["rank"], hidden["opted_in"], hidden["score"]) == (None, False, "500.00")

    put = api.put(f"/members/{shy}/leaderboard-profile", json={"opted_in": True},
                  scope="integration")  # fmt: skip
    assert put.json()["display_name"] == "D*** S."
    assert board(api, "monthly", period="2026-06")["entries"][0]["display_name"] == "D*** S."


def test_a_board_by_store_counts_events_per_store(api: Api) -> None:
    setup(api)
    ann, bob = member(api, "Ann", "Lee"), member(api, "Bob", "Marsh")
    for who, store, n in ((ann, "lyon", 2), (bob, "lyon", 1), (bob, "paris", 3)):
        for i in range(n):
            payload = event("review", {"id": who}, {"stars": 5}, store=store,
                            occurred_at=T + timedelta(minutes=i))  # fmt: skip
            assert api.post("/events", json=payload, scope="integration").status_code == 201

    lyon = board(api, "reviews", period="2026-W23", store="lyon")
    paris = board(api, "reviews", period="2026-W23", store="paris")
    no_store = api.get("/leaderboards/reviews", params={"period": "2026-W23"}, scope="read")

    assert [(e["display_name"], e["score"]) for e in lyon["entries"]] == [
        ("A*** L.", "2.00"),
        ("B*** M.", "1.00"),
    ]
    assert [e["score"] for e in paris["entries"]] == ["3.00"]
    assert no_store.status_code == 422
    assert no_store.json()["fields"][0]["loc"] == ["query", "store"]


def test_bad_periods_and_boards_are_refused(api: Api) -> None:
    setup(api)
    wrong = api.get("/leaderboards/monthly", params={"period": "2026-W23"}, scope="read")
    missing = api.get("/leaderboards/nope", scope="read")
    assert wrong.status_code == 422
    assert "a month period" in wrong.json()["detail"]
    assert missing.status_code == 404


def test_the_period_rewards_are_paid_once_after_it_ends(api: Api) -> None:
    setup(api)
    ids = [member(api, f"M{i}", "X") for i in range(4)]
    for i, who in enumerate(ids):
        buy(api, who, f"{10 * (i + 1)}.00", T + timedelta(minutes=i))

    early = api.post("/leaderboards/monthly/close", params={"period": "2099-01"}, scope="admin")
    first = api.post("/leaderboards/monthly/close", params={"period": "2026-06"}, scope="admin")
    second = api.post("/leaderboards/monthly/close", params={"period": "2026-06"}, scope="admin")

    assert early.status_code == 409
    assert first.status_code == 200, first.text
    (paid,) = first.json()
    assert paid["paid"] is True
    assert [(w["rank"], w["member_id"]) for w in paid["winners"]] == [
        (1, ids[3]),
        (2, ids[2]),
        (3, ids[1]),
    ]
    assert second.json()[0]["paid"] is False
    balance = api.get(f"/members/{ids[3]}/wallets/points/balance", scope="read").json()
    assert int(balance["available"]) == 40 + 1000
    badges = api.get(f"/members/{ids[3]}/badges", scope="read").json()
    assert [b["badge"] for b in badges] == ["champion"]


def test_the_score_counts_follow_scores_and_opt_ins(
    api: Api, database: Database, programme: Programme
) -> None:
    setup(api)
    ann, bob = member(api, "Ann", "Lee"), member(api, "Bob", "Marsh", opt_in=False)
    for who, amount in ((ann, "30.00"), (bob, "30.00"), (ann, "20.00"), (bob, "5.00")):
        buy(api, who, amount, T)
    toggle = {"opted_in": True}
    assert api.put(
        f"/members/{bob}/leaderboard-profile", json=toggle, scope="integration"
    ).is_success
    toggle = {"opted_in": False}
    assert api.put(
        f"/members/{ann}/leaderboard-profile", json=toggle, scope="integration"
    ).is_success

    with database.transaction() as s:
        counts = {
            (r.board, r.rank_score): r.members
            for r in s.scalars(select(LeaderboardCount).where(
                LeaderboardCount.programme_id == programme.id))
            if r.members
        }  # fmt: skip
        visible = s.execute(
            select(LeaderboardScore.board, LeaderboardScore.rank_score, func.count())
            .where(LeaderboardScore.programme_id == programme.id, LeaderboardScore.visible)
            .group_by(LeaderboardScore.board, LeaderboardScore.rank_score)
        ).all()
    assert counts == {(b, r): n for b, r, n in visible} == {("monthly", Decimal("-35")): 1}
    rank = api.get(f"/leaderboards/monthly/members/{bob}", params={"period": "2026-06"},
                   scope="read").json()  # fmt: skip
    assert (rank["rank"], rank["score"]) == (1, "35.00")


def test_the_daily_job_pays_finished_periods_and_comes_back(
    api: Api, database: Database, programme: Programme
) -> None:
    setup(api)
    winner = member(api, "Wyn", "Ner")
    buy(api, winner, "70.00", T)
    with database.transaction() as s:
        (job,) = s.scalars(
            select(Job).where(Job.programme_id == programme.id, Job.kind == CLOSE_JOB)
        ).all()
        job.due_at = datetime(2026, 7, 1, 1, tzinfo=UTC)  # as if the worker ran it in July
        run_close(s, job)
        payouts = s.scalars(
            select(LeaderboardPayout).where(LeaderboardPayout.programme_id == programme.id)
        ).all()
        scheduled = s.scalar(
            select(func.count()).where(Job.programme_id == programme.id, Job.kind == CLOSE_JOB)
        )
    assert [(p.board, p.period, len(p.winners)) for p in payouts] == [("monthly", "2026-06", 1)]
    assert scheduled == 1  # the next run, due tomorrow: its key is the pending one's (once)
    balance = api.get(f"/members/{winner}/wallets/points/balance", scope="read").json()
    assert int(balance["available"]) == 70 + 1000
