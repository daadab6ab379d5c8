"""Recommendations of a programme: trained from SQL aggregates, evaluated, stored, served.

:func:`interactions` reads, in one grouped query, how many purchase lines of each item (a
line's ``sku`` or ``category``) each member bought before their last purchase and in it
(``ROW_NUMBER`` over the member's purchases). :func:`train` evaluates every model on the
held-out last purchases (precision@k, recall@k), retrains each on everything, makes the best
one the default only if it beats the popularity baseline, and stores each member's top items of
the default model with the reason (``member_recommendations``, replaced whole).
"""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import Table, Uuid, bindparam, delete, select, text
from sqlalchemy.orm import Session

from fidelia.analytics import recommend as rc
from fidelia.errors import NotFound, ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.kit.bulk import insert_rows
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.models import Job, Member, MemberRecommendation, Programme, RecommendationModel

Item = Literal["sku", "category"]
TRAIN_JOB = "analytics.recommend"
STORED = 10  # items stored per member
MIN_EVALUATED = 10
TABLE: Table = MemberRecommendation.__table__  # type: ignore[assignment]

_LINES = {
    "postgresql": (
        "CROSS JOIN LATERAL jsonb_array_elements(e.properties->'lines') AS x",
        "x.value->>'{field}'",
    ),
    "sqlite": (
        "JOIN json_each(e.properties, '$.lines') AS x",
        "json_extract(x.value, '$.{field}')",
    ),
}


def _sql(dialect: str, item: Item) -> str:
    join, expr = _LINES[dialect]
    value = expr.format(field=item)
    return f"""
WITH p AS (
  SELECT id, member_id,
    ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY occurred_at DESC, id DESC) AS rn
  FROM events WHERE programme_id = :programme_id AND type = 'purchase'
)
SELECT p.member_id, {value} AS item,
  SUM(CASE WHEN p.rn > 1 THEN 1 ELSE 0 END) AS before_last,
  SUM(CASE WHEN p.rn = 1 THEN 1 ELSE 0 END) AS in_last
FROM p JOIN events AS e ON e.id = p.id {join}
WHERE {value} IS NOT NULL
GROUP BY p.member_id, {value}"""


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def interactions(
    session: Session, *, programme_id: uuid.UUID, item: Item
) -> list[tuple[uuid.UUID, str, float, float]]:
    """(member, item, lines before the last purchase, lines in the last purchase)."""
    if item not in ("sku", "category"):
        raise ValidationFailed.on("item", "must be sku or category")
    stmt = text(_sql(session.get_bind().dialect.name, item)).bindparams(
        bindparam("programme_id", type_=Uuid())
    )
    rows = session.execute(stmt, {"programme_id": programme_id}).all()
    return [(_uuid(r.member_id), str(r.item), float(r.before_last), float(r.in_last)) for r in rows]


def train(
    session: Session, *, programme: Programme, item: Item = "sku", k: int = 5,
    now: datetime | None = None,
) -> list[RecommendationModel]:  # fmt: skip
    """Evaluate, retrain on everything, store the models and the default model's top items."""
    if not 1 <= k <= 50:
        raise ValidationFailed.on("k", "must be between 1 and 50")
    now = now or utcnow()
    rows = interactions(session, programme_id=programme.id, item=item)
    train_set, test = rc.split_last(rows)
    if len(train_set.items) < 2:
        raise ValidationFailed.on(
            "items", f"recommendations need purchases of at least 2 {item} values, "
            f"got {len(train_set.items)}",
        )  # fmt: skip
    if len(test) < MIN_EVALUATED:
        raise ValidationFailed.on(
            "history", f"recommendations need at least {MIN_EVALUATED} members with two "
            f"purchases or more (to evaluate on their last), got {len(test)}",
        )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # implicit's BLAS thread advice
        results, best = rc.compare(train_set, test, k=k)
        full = rc.Interactions.from_rows([(m, s, b + last) for m, s, b, last in rows])
        model = rc.fit(best, full)
    session.execute(
        delete(RecommendationModel).where(
            RecommendationModel.programme_id == programme.id,
            RecommendationModel.kind.like(f"{item}:%"),
        )
    )
    session.execute(
        delete(MemberRecommendation).where(
            MemberRecommendation.programme_id == programme.id,
            MemberRecommendation.kind.like(f"{item}:%"),
        )
    )
    popular = rc.fit("popularity", full)
    top_popular = popular.top(np.array([0], dtype=np.int64), STORED)[0].tolist()
    settings = {
        "item": item, "k": k, "members": len(full.members), "items": len(full.items),
        "evaluated_members": len(test),
        "popular": [{"item": full.items[j], "buyers": int(popular.state["buyers"][j])}
                    for j in top_popular],
    }  # fmt: skip
    stored = []
    for r in results:
        row = RecommendationModel(
            programme_id=programme.id, kind=f"{item}:{r.kind}", trained_at=now,
            is_default=r.kind == best, evaluation=r.as_dict(), settings=settings,
        )  # fmt: skip
        session.add(row)
        stored.append(row)
    session.flush()
    _store_members(session, programme.id, f"{item}:{best}", model)
    return stored


def _store_members(session: Session, programme_id: uuid.UUID, kind: str, model: rc.Model) -> None:
    members = np.arange(len(model.train.members), dtype=np.int64)
    for start in range(0, len(members), 2048):
        block = members[start : start + 2048]
        top = model.top(block, STORED)
        scores = model.scores(block)
        out = []
        for offset, (row, best) in enumerate(zip(block.tolist(), top.tolist(), strict=True)):
            for rank, j in enumerate(best, start=1):
                out.append({
                    "id": uuid7(), "programme_id": programme_id,
                    "member_id": model.train.members[row], "kind": kind, "rank": rank,
                    "item": model.train.items[j][:200],
                    "score": float(np.nan_to_num(scores[offset, j])),
                    "reason": model.reason(row, j)[:300],
                })  # fmt: skip
        insert_rows(session, TABLE, out)


def models(session: Session, *, programme_id: uuid.UUID) -> list[RecommendationModel]:
    return list(
        session.scalars(
            select(RecommendationModel)
            .where(RecommendationModel.programme_id == programme_id)
            .order_by(RecommendationModel.kind)
        )
    )


def for_member(
    session: Session, *, programme: Programme, member_id: uuid.UUID, item: Item, k: int
) -> dict[str, Any]:
    """The member's stored top ``k`` of the default model; the most popular items (with that
    reason) for a member the model has not seen (no purchase at training time)."""
    member = session.get(Member, member_id)
    if member is None or member.programme_id != programme.id:
        raise NotFound(f"no member {member_id}")
    default = session.scalar(
        select(RecommendationModel).where(
            RecommendationModel.programme_id == programme.id,
            RecommendationModel.kind.like(f"{item}:%"),
            RecommendationModel.is_default.is_(True),
        )
    )
    if default is None:
        raise NotFound(
            f"no recommendation model trained for item {item}: "
            "POST /api/v1/analytics/recommendations/train"
        )
    rows = session.scalars(
        select(MemberRecommendation)
        .where(MemberRecommendation.member_id == member_id,
               MemberRecommendation.kind == default.kind)
        .order_by(MemberRecommendation.rank)
        .limit(k)
    ).all()  # fmt: skip
    if rows:
        items = [{"rank": r.rank, "item": r.item, "score": round(r.score, 6), "reason": r.reason}
                 for r in rows]  # fmt: skip
        model = default.kind.split(":", 1)[1]
    else:
        items = [
            {"rank": i, "item": p["item"], "score": None,
             "reason": f"popular: bought by {p['buyers']} members"}
            for i, p in enumerate(default.settings["popular"][:k], start=1)
        ]  # fmt: skip
        model = "popularity"
    return {
        "member_id": str(member_id), "item": item, "model": model,
        "trained_at": default.trained_at.isoformat(), "items": items,
    }  # fmt: skip


def schedule(session: Session, *, programme: Programme, after: datetime, item: Item) -> Job:
    """Enqueue the programme's training at the next UTC 02:00 after ``after`` (once a day)."""
    day = after.astimezone(UTC).date() + timedelta(days=1)
    return jobs.enqueue(
        session,
        kind=TRAIN_JOB,
        payload={"programme_id": str(programme.id), "item": item},
        due_at=datetime.combine(day, time(2), tzinfo=UTC),
        idempotency_key=f"recommend-train:{programme.id}:{item}:{day.isoformat()}",
        programme_id=programme.id,
    )


@jobs.handler(TRAIN_JOB)
def run_train(session: Session, job: Job) -> None:
    """Retrain, then schedule the next day's run (a programme with too little data is skipped)."""
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None:
        return
    item = job.payload.get("item", "sku")
    at = max(job.due_at, utcnow())
    try:
        with session.begin_nested():
            train(session, programme=programme, item=item, now=at)
    except ValidationFailed:
        pass
    schedule(session, programme=programme, after=at, item=item)
