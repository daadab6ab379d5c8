"""One member's traits: stored figures as of now, loyalty and reachability read live."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from fidelia.members import service as members
from fidelia.models import Programme
from fidelia.traits import compute as c
from fidelia.traits import loyalty
from fidelia.traits.schemas import Share, TraitsOut, WindowFigures
from fidelia.traits.service import build_row, context_for, section_for, traits_row


def describe(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime
) -> TraitsOut:
    """Every trait of the member as of ``now`` (404 when the member is not in the programme).

    A member without a stored row (no event yet) is described as a prospect would be."""
    member = members.get(session, programme=programme, member_id=member_id)
    compiled = section_for(session, programme)
    section = compiled.section
    row = traits_row(session, member_id=member_id)
    stored = row is not None
    if row is None:
        row = build_row(compiled, c.Figures(), member_id=member_id, programme_id=programme.id,
                        now=now, kept=None)  # fmt: skip
    ctx = context_for(row, now=now, section=section)
    count, spend = row["purchases_count"], Decimal(row["spend_total"])
    affinities = {
        dim: {
            value: Share(
                purchases=n,
                spend=Decimal(s),
                purchases_share=round(n / count, 4) if count else 0.0,
                spend_share=round(float(Decimal(s) / spend), 4) if spend else 0.0,
            )
            for value, (n, s) in values.items()
        }
        for dim, values in row["affinities"].items()
    }
    badges, challenges = loyalty.engagement(
        session, programme=programme, member_id=member_id, now=now
    )
    rfm = None
    if row["rfm_r"] is not None:
        cells = {c.id: c.labels for c in section.rfm.cells} if section.rfm else {}
        rfm = {
            "r": row["rfm_r"],
            "f": row["rfm_f"],
            "m": row["rfm_m"],
            "cell": row["rfm_cell"],
            "cell_labels": dict(cells.get(row["rfm_cell"], {})),
        }
    stage = compiled.stage(ctx)
    stages = {s.id: s.labels for s in section.lifecycle}
    return TraitsOut(
        member_id=member_id,
        computed_at=row["computed_at"] if stored else None,
        windows_on=row["windows_on"] if stored else None,
        recency_days=ctx["recency_days"],
        first_purchase_at=row["first_purchase_at"],
        last_purchase_at=row["last_purchase_at"],
        purchases_count=count,
        spend_total=spend,
        average_basket=row["average_basket"],
        interval_mean_days=row["interval_mean_days"],
        interval_median_days=row["interval_median_days"],
        expected_next_purchase_at=row["expected_next_purchase_at"],
        windows={
            f"{n}d": WindowFigures(purchases=ctx[f"frequency_{n}d"], spend=ctx[f"monetary_{n}d"])
            for n in section.windows
        },
        rfm=rfm,
        lifecycle_stage=stage,
        lifecycle_stage_labels=dict(stages.get(stage, {})) if stage else {},
        affinities=affinities,
        channel_mix={k: round(v, 4) for k, v in ctx["channel_share"].items()},
        favourite_store=row["favourite_store"],
        favourite_channel=row["favourite_channel"],
        promo_purchases_share=row["promo_purchases_share"],
        promo_spend_share=row["promo_spend_share"],
        points=loyalty.balances(session, programme=programme, member_id=member_id),
        points_expiring=loyalty.expiring(
            session,
            programme=programme,
            member_id=member_id,
            now=now,
            days=section.expiring_within_days,
        ),
        tier=loyalty.tier_distance(session, programme=programme, member_id=member_id, now=now),
        badges=badges,
        open_challenges=challenges,
        last_redemption_at=loyalty.last_redemption(session, member_id=member_id),
        reachability=loyalty.reachability(session, member=member),
        p_alive=row.get("p_alive"),
        clv=row.get("clv"),
        churn_risk=row.get("churn_risk"),
    )
