"""Offers: giving them to members (one, a list, a segment), what a member holds, and how
each offer converts (offered -> used, revenue).

Design note
-----------
Offers are declared in the programme document (``offers``); who got one is an
``offer_targets`` row (one per member and offer: giving twice changes nothing), with its own
validity (the offer's dates, and ``valid_days`` from when it was given: the earlier end
wins). Giving is set-based: one query checks the members (or reads the segment), one finds
those who hold it already, one INSERT writes the rest, and points offers are credited in one
set-based posting. A voucher offer issues the member's voucher when given; its use is the
voucher's use at the till. A booster is used by a purchase it boosted (:mod:`.boosts`); a
points offer is used when it is credited.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.engagement.rewarding import give_voucher
from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.ledger import operations as ledger
from fidelia.models import (
    Member,
    Programme,
    ProgrammeVersion,
    SegmentMember,
    Voucher,
    VoucherUse,
)
from fidelia.models.offers import OfferCounter, OfferTarget, OfferUse
from fidelia.offers.schemas import (
    ConversionOut,
    GiveIn,
    GiveOut,
    MemberOfferOut,
    OfferDef,
    OfferOut,
)


def offers_of(session: Session, programme: Programme) -> dict[str, OfferDef]:
    """The live document's offers by code (parsed once per version)."""
    return versions.section(
        session,
        programme,
        "offers",
        lambda raw: {o["code"]: OfferDef.model_validate(o) for o in raw.get("offers") or ()},
    )


def get_offer(session: Session, programme: Programme, code: str) -> OfferDef:
    offer = offers_of(session, programme).get(code)
    if offer is None:
        raise NotFound(f"offer {code!r} is not in the programme document")
    return offer


def status_of(offer: OfferDef, now: datetime) -> str:
    if offer.valid_from is not None and now < offer.valid_from:
        return "upcoming"
    if offer.valid_to is not None and now >= offer.valid_to:
        return "ended"
    return "active"


def window(offer: OfferDef, given_at: datetime) -> tuple[datetime, datetime | None]:
    """When a member may use an offer given at ``given_at``."""
    start = max(given_at, offer.valid_from) if offer.valid_from else given_at
    ends = [offer.valid_to] if offer.valid_to else []
    if offer.valid_days is not None:
        ends.append(given_at + timedelta(days=offer.valid_days))
    return start, min(ends) if ends else None


def new_target(
    programme: Programme,
    offer: OfferDef,
    member_id: uuid.UUID,
    *,
    source: str,
    now: datetime,
    actor: str | None = None,
    slot: int | None = None,
) -> OfferTarget:
    start, until = window(offer, now)
    return OfferTarget(
        id=uuid7(),
        programme_id=programme.id,
        offer=offer.code,
        member_id=member_id,
        source=source,
        given_at=now,
        valid_from=start,
        valid_until=until,
        uses=0,
        revenue=Decimal(0),
        slot=slot,
        actor=actor,
    )


def _audience(session: Session, programme: Programme, data: GiveIn) -> tuple[list[uuid.UUID], str]:
    if data.segment is not None:
        if data.segment not in _segment_codes(session, programme):
            raise ValidationFailed.on(("body", "segment"), f"no segment {data.segment!r}")
        ids = session.scalars(
            select(SegmentMember.member_id).where(
                SegmentMember.programme_id == programme.id,
                SegmentMember.segment == data.segment,
            )
        ).all()
        return sorted(set(ids)), "segment"
    wanted = list(dict.fromkeys(data.member_ids))
    found = set(
        session.scalars(
            select(Member.id).where(Member.programme_id == programme.id, Member.id.in_(wanted))
        )
    )
    for i, member_id in enumerate(data.member_ids):
        if member_id not in found:
            raise ValidationFailed.on(("body", "member_ids", i), f"no member {member_id}")
    return wanted, "member" if len(wanted) == 1 else "list"


def _segment_codes(session: Session, programme: Programme) -> list[str]:
    raw = session.scalar(
        select(ProgrammeVersion.document).where(
            ProgrammeVersion.programme_id == programme.id,
            ProgrammeVersion.version == programme.live_version,
        )
    )
    section = (raw or {}).get("segments") or {}
    return [s["code"] for s in section.get("definitions", [])]


def give(
    session: Session,
    *,
    programme: Programme,
    code: str,
    data: GiveIn,
    actor: str | None = None,
    now: datetime | None = None,
) -> GiveOut:
    """Give offer ``code`` to ``data``'s members (those who hold it already keep theirs)."""
    now = now or utcnow()
    offer = get_offer(session, programme, code)
    if status_of(offer, now) == "ended":
        raise Conflict(f"offer {code!r} ended at {offer.valid_to}")
    member_ids, source = _audience(session, programme, data)
    held: set[uuid.UUID] = set()
    for start in range(0, len(member_ids), 500):
        held.update(
            session.scalars(
                select(OfferTarget.member_id).where(
                    OfferTarget.programme_id == programme.id,
                    OfferTarget.offer == code,
                    OfferTarget.member_id.in_(member_ids[start : start + 500]),
                )
            )
        )
    new = [m for m in member_ids if m not in held]
    targets = [new_target(programme, offer, m, source=source, now=now, actor=actor) for m in new]
    session.add_all(targets)
    session.flush()
    deliver(session, programme=programme, offer=offer, targets=targets, now=now)
    return GiveOut(offer=code, given=len(new), already=len(held))


def deliver(
    session: Session,
    *,
    programme: Programme,
    offer: OfferDef,
    targets: list[OfferTarget],
    now: datetime,
    ref: str = "given",
) -> list[dict[str, Any]]:
    """What a just-given offer gives at once: points (one set-based posting), a voucher."""
    effects: list[dict[str, Any]] = []
    if offer.kind == "points" and targets:
        assert offer.amount is not None
        ledger.award_many(
            session,
            programme=programme,
            awards=[
                ledger.AwardRequest(
                    member_id=t.member_id,
                    wallet=offer.wallet,
                    amount=offer.amount,
                    idempotency_key=f"offer:{offer.code}:{t.member_id}",
                    occurred_at=now,
                    source_type="offer",
                    source_id=offer.code,
                    rule_id=f"offer:{offer.code}",
                )
                for t in targets
            ],
            now=now,
        )
        for t in targets:
            record_use(session, t, ref=ref, revenue=Decimal(0), at=now)
    elif offer.kind == "voucher":
        assert offer.reward is not None
        for t in targets:
            effect = give_voucher(
                session,
                programme=programme,
                member_id=t.member_id,
                ref=offer.reward,
                idempotency_key=f"offer:{offer.code}:{t.member_id}",
                source_id=offer.code,
                now=now,
            )
            if effect.get("voucher_id"):
                t.voucher_id = uuid.UUID(effect["voucher_id"])
            effects.append({**effect, "offer": offer.code})
    session.flush()
    return effects


def record_use(
    session: Session, target: OfferTarget, *, ref: str, revenue: Decimal, at: datetime
) -> None:
    target.uses += 1
    target.revenue = Decimal(target.revenue) + revenue
    target.last_used_at = at
    session.add(
        OfferUse(
            programme_id=target.programme_id,
            offer=target.offer,
            target_id=target.id,
            member_id=target.member_id,
            ref=ref,
            revenue=revenue,
            used_at=at,
        )
    )


def conversion(session: Session, *, programme: Programme, offer: OfferDef) -> ConversionOut:
    """Offered -> used and the revenue of the uses (a voucher offer: its vouchers' uses)."""
    base = select(OfferTarget).where(
        OfferTarget.programme_id == programme.id, OfferTarget.offer == offer.code
    )
    offered = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    if offer.kind == "voucher":
        rows = session.execute(
            select(OfferTarget.member_id, VoucherUse.basket_total)
            .join(Voucher, Voucher.id == OfferTarget.voucher_id)
            .join(VoucherUse, VoucherUse.voucher_id == Voucher.id)
            .where(OfferTarget.programme_id == programme.id, OfferTarget.offer == offer.code)
        ).all()
        members = {r[0] for r in rows}
        uses, revenue = len(rows), sum((Decimal(r[1]) for r in rows), Decimal(0))
    else:
        rows = session.execute(
            select(OfferUse.member_id, OfferUse.revenue).where(
                OfferUse.programme_id == programme.id, OfferUse.offer == offer.code
            )
        ).all()
        members = {r[0] for r in rows}
        uses, revenue = len(rows), sum((Decimal(r[1]) for r in rows), Decimal(0))
    rate = (Decimal(len(members)) / offered).quantize(Decimal("0.0001")) if offered else Decimal(0)
    return ConversionOut(offered=offered, used=len(members), uses=uses, rate=rate, revenue=revenue)


def list_offers(
    session: Session, *, programme: Programme, now: datetime | None = None
) -> list[OfferOut]:
    now = now or utcnow()
    offers = offers_of(session, programme)
    claimed = dict(
        session.execute(
            select(OfferCounter.offer, OfferCounter.claimed).where(
                OfferCounter.programme_id == programme.id
            )
        ).all()
    )
    return [
        OfferOut(
            offer=offer,
            status=status_of(offer, now),
            slots_left=(
                max(offer.first_n.count - claimed.get(code, 0), 0) if offer.first_n else None
            ),
            conversion=conversion(session, programme=programme, offer=offer),
        )
        for code, offer in sorted(offers.items())
    ]


def member_offers(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    now: datetime | None = None,
    active_only: bool = False,
) -> list[MemberOfferOut]:
    """The offers the member was given, newest first, with what is left of each."""
    now = now or utcnow()
    if (
        session.scalar(
            select(Member.id).where(Member.id == member_id, Member.programme_id == programme.id)
        )
        is None
    ):
        raise NotFound(f"member {member_id} does not exist")
    offers = offers_of(session, programme)
    rows = session.execute(
        select(OfferTarget, Voucher.code)
        .outerjoin(Voucher, Voucher.id == OfferTarget.voucher_id)
        .where(OfferTarget.programme_id == programme.id, OfferTarget.member_id == member_id)
        .order_by(OfferTarget.given_at.desc(), OfferTarget.offer)
    ).all()
    out = []
    for target, voucher_code in rows:
        offer = offers.get(target.offer)
        if offer is None:
            continue  # removed from the document: nothing to show or use
        status = _target_status(offer, target, now)
        if active_only and status != "active":
            continue
        out.append(
            MemberOfferOut(
                code=offer.code,
                name=offer.name,
                description=offer.description,
                kind=offer.kind,
                source=target.source,
                given_at=target.given_at,
                valid_from=target.valid_from,
                valid_until=target.valid_until,
                uses=target.uses,
                uses_left=(offer.max_uses - target.uses) if offer.max_uses else None,
                status=status,
                voucher_code=voucher_code,
                detail=_detail(offer),
            )
        )
    return out


def _detail(offer: OfferDef) -> dict[str, Any]:
    if offer.kind == "points":
        return {"amount": offer.amount, "wallet": offer.wallet}
    if offer.kind == "booster":
        return {"multiplier": str(offer.multiplier), "wallet": offer.wallet}
    if offer.kind == "voucher":
        return {"reward": offer.reward}
    assert offer.perk is not None
    return {"perk": offer.perk.code}


def _target_status(offer: OfferDef, target: OfferTarget, now: datetime) -> str:
    if now < target.valid_from:
        return "upcoming"
    if target.valid_until is not None and now >= target.valid_until:
        return "expired"
    if offer.kind == "points" and target.uses:
        return "used"
    if offer.max_uses is not None and target.uses >= offer.max_uses:
        return "used"
    return "active"
