"""Fitted analytics models (issue 15): CLV fits and recommendation models with their output.

- ``clv_fits``: one row per BG/NBD + Gamma-Gamma fit of a programme (parameters, log-likelihoods,
  the figures it was fitted on and the settings of the CLV it produced). The per-member results
  (``p_alive``, ``clv``, ``churn_risk``) are trait columns of ``member_traits`` so that segments,
  rules and templates read them as ``traits.p_alive`` etc. like every other trait.
- ``recommendation_models``: one row per trained model kind of a programme, with its offline
  evaluation; ``is_default`` marks the model the API serves.
- ``member_recommendations``: each member's top items per model (rank 1 first), with the reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, uuid_pk


class ClvFit(Base):
    """A programme's fitted purchase and spend models, newest ``fitted_at`` in force."""

    __tablename__ = "clv_fits"
    __table_args__ = (Index("ix_clv_fits_programme_id_fitted_at", "programme_id", "fitted_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    fitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    as_of: Mapped[datetime]
    customers: Mapped[int]
    repeat_customers: Mapped[int]
    bgnbd: Mapped[dict[str, Any]]
    gamma_gamma: Mapped[dict[str, Any]]
    settings: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any]]


class RecommendationModel(Base):
    """One trained recommender of a programme (kind: popularity, co_purchase, als)."""

    __tablename__ = "recommendation_models"
    __table_args__ = (Index("ix_recommendation_models_programme_id_kind", "programme_id", "kind"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    is_default: Mapped[bool] = mapped_column(default=False)
    evaluation: Mapped[dict[str, Any]]
    settings: Mapped[dict[str, Any]]


class MemberRecommendation(Base):
    """A member's recommended item of one model, ranked."""

    __tablename__ = "member_recommendations"
    __table_args__ = (
        Index("ix_member_recommendations_member_id_kind_rank", "member_id", "kind", "rank"),
        Index("ix_member_recommendations_programme_id_kind", "programme_id", "kind"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    rank: Mapped[int] = mapped_column(SmallInteger)
    item: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(300))
