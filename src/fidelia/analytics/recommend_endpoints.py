"""Recommendations API: train and evaluate the models, a member's next-best items."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from fidelia.analytics import recommend_service as service
from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.examples import examples
from fidelia.kit.clock import utcnow

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)

ItemQuery = Annotated[Literal["sku", "category"], Query(description="What is recommended")]


ITEM_EXAMPLE: dict[str, Any] = {
    "rank": 1, "item": "MUS-008", "score": 1.732051, "reason": "often bought with MUS-003"
}  # fmt: skip
MODEL_EXAMPLE: dict[str, Any] = {
    "kind": "sku:co_purchase",
    "is_default": True,
    "trained_at": "2026-11-30T02:00:03.512044+00:00",
    "evaluation": {"kind": "co_purchase", "k": 5, "members": 1802, "precision_at_k": 0.068036,
                   "recall_at_k": 0.137643, "hit_rate": 0.294118},
    "settings": {"item": "sku", "k": 5, "members": 2395, "items": 61, "evaluated_members": 1802,
                 "popular": [{"item": "PET-001", "buyers": 412}]},
}  # fmt: skip


class TrainIn(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples({"item": "sku", "k": 5, "daily": True}))

    item: Literal["sku", "category"] = "sku"
    k: int = Field(5, ge=1, le=50, description="k of precision@k and recall@k")
    daily: bool = Field(False, description="also retrain by itself every day (UTC 02:00)")


class ModelOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(MODEL_EXAMPLE))

    kind: str
    is_default: bool
    trained_at: str
    evaluation: dict[str, Any]
    settings: dict[str, Any]


class RecommendedItem(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ITEM_EXAMPLE))

    rank: int
    item: str
    score: float | None
    reason: str


class RecommendationsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "member_id": "019b8d62-7a80-7ce8-9a81-ba6a85a0bcc2",
                "item": "sku",
                "model": "co_purchase",
                "trained_at": "2026-11-30T02:00:03.512044+00:00",
                "items": [ITEM_EXAMPLE],
            }
        )
    )

    member_id: str
    item: str
    model: str
    trained_at: str
    items: list[RecommendedItem]


def _out(rows: list[Any]) -> list[ModelOut]:
    return [
        ModelOut(kind=r.kind, is_default=r.is_default, trained_at=r.trained_at.isoformat(),
                 evaluation=r.evaluation, settings=r.settings)
        for r in rows
    ]  # fmt: skip


@router.post(
    "/analytics/recommendations/train",
    response_model=list[ModelOut],
    summary="Train and evaluate the recommenders, store every member's next-best items",
)
def train(body: TrainIn, principal: Admin, session: DbSession) -> list[ModelOut]:
    """Popularity (baseline), item-to-item co-purchase and implicit-feedback ALS are evaluated
    on each member's held-out last purchase (precision@k, recall@k, hit rate over members with
    two purchases or more), then retrained on everything; the best is the default only if it
    beats the baseline. Every member's top 10 items of the default model are stored with the
    reason. `daily: true` also schedules the `analytics.recommend` job every day.

    422: fewer than 2 items or fewer than 10 members with two purchases (nothing is written).

    Scope: `admin`.
    """
    programme = principal.programme
    now = utcnow()
    rows = service.train(session, programme=programme, item=body.item, k=body.k, now=now)
    if body.daily:
        service.schedule(session, programme=programme, after=now, item=body.item)
    return _out(rows)


@router.get(
    "/analytics/recommendations",
    response_model=list[ModelOut],
    summary="The trained recommenders and their evaluation",
)
def list_models(principal: Reader, session: DbSession) -> list[ModelOut]:
    """Every trained model (per item kind) with precision@k, recall@k and which is the default.

    Scope: `read`.
    """
    return _out(service.models(session, programme_id=principal.programme.id))


@router.get(
    "/members/{member_id}/recommendations",
    response_model=RecommendationsOut,
    summary="A member's next-best items, with the reason",
)
def member_recommendations(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    item: ItemQuery = "sku",
    k: Annotated[int, Query(ge=1, le=10)] = 5,
) -> RecommendationsOut:
    """The member's top `k` items of the default model as of its last training, each with its
    reason ("often bought with MUS-008", "popular: bought by 412 members", "members who buy
    like you bought it"). A member without purchases at training time gets the most popular
    items.

    404: no such member, or no model trained for `item` yet.

    Scope: `read`.
    """
    found = service.for_member(
        session, programme=principal.programme, member_id=member_id, item=item, k=k
    )
    return RecommendationsOut(**found)
