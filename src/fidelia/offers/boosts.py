"""What offers and plans add to the earning path: boosters, plan multipliers, first-N slots.

Design note
-----------
The intake's :class:`~fidelia.intake.effects.EngineRun` asks :func:`extras_for` once per
batch; it is None unless the live document has a booster offer, a first-N offer or a plan
with an earning multiplier, so a programme without them pays nothing. Otherwise the batch's
members' booster targets and live subscriptions are read in one query each
(:meth:`Extras.load`, with the engine states), and each purchase's evaluation gets extra
awards (:meth:`Extras.boost`): ``offer:<code>`` or ``plan:<code>``, each ``(multiplier - 1)``
times what the purchase's spend rules (and their boosters) award into the wallet, line by
line (rounded down), so a return takes back exactly the returned lines' share. Boosts add up
rather than compound. A plan's multiplier applies while its subscription is live at the
event's time; a booster within its target's validity and use limit (each boosted purchase
is one use, with the basket as revenue).

First-N offers (:meth:`Extras.on_enrolment`): an enrolment the offer applies to takes a slot
with ``UPDATE offer_counters SET claimed = claimed + 1 WHERE claimed < N RETURNING claimed``:
only that offer's row is locked, only by enrolments it applies to, and PostgreSQL re-checks
the condition after waiting for a concurrent holder, so exactly N slots are ever given. Once
an UPDATE finds none left the offer is remembered as full (a counter never goes down).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fidelia.kit.attach import attached
from fidelia.kit.prepared import Prepared
from fidelia.models import Programme
from fidelia.models.offers import OfferCounter, OfferTarget
from fidelia.models.plans import Subscription
from fidelia.offers import service
from fidelia.offers.schemas import OfferDef
from fidelia.plans import service as plans
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import LIVE_STATES, PlanDef
from fidelia.rules.outcome import Award, Evaluation, LineShare
from fidelia.rules.state import EngineEvent, MemberState, basket_amount

_FULL: set[tuple[uuid.UUID, str, int]] = set()
_TARGET_ROWS = OfferTarget.__table__
_TARGETS = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(_TARGET_ROWS).where(
        _TARGET_ROWS.c.programme_id == bindparam("programme_id"),
        _TARGET_ROWS.c.member_id.in_(bindparam("members", expanding=True)),
        _TARGET_ROWS.c.offer.in_(bindparam("offers", expanding=True)),
    )
)
_FULL_LOCK = threading.Lock()


@dataclass
class Extras:
    """The batch's view of the offers and plans that change earning."""

    session: Session
    programme: Programme
    version: int
    boosters: dict[str, OfferDef]
    first_n: list[OfferDef]
    plans: dict[str, PlanDef]
    targets: dict[uuid.UUID, list[OfferTarget]] = field(default_factory=dict)
    subs: dict[uuid.UUID, Subscription] = field(default_factory=dict)

    def load(self, member_ids: list[uuid.UUID]) -> None:
        """The members' booster targets and live subscriptions: one query each, if any."""
        if not member_ids:
            return
        if self.boosters:
            params: dict[str, Any] = {"programme_id": self.programme.id}
            params["offers"] = sorted(self.boosters)
            for start in range(0, len(member_ids), 500):
                params["members"] = member_ids[start : start + 500]
                for values in _TARGETS.rows(self.session, params):
                    target = attached(self.session, OfferTarget, values)
                    self.targets.setdefault(target.member_id, []).append(target)
        if self.plans:
            self.subs.update(
                plans.live_for_members(
                    self.session, programme=self.programme, member_ids=member_ids
                )
            )

    def extend(
        self, evaluation: Evaluation, event: EngineEvent, event_id: uuid.UUID, member_id: uuid.UUID
    ) -> tuple[Evaluation, list[tuple[OfferDef, OfferTarget]]]:
        """``evaluation`` with the awards offers and plans add; the first-N offers given."""
        given: list[tuple[OfferDef, OfferTarget]] = []
        if event.type == "enrolment" and self.first_n:
            evaluation, given = self.on_enrolment(evaluation, event, member_id)
        return self.boost(evaluation, event, event_id, member_id), given

    def deliver(
        self, given: list[tuple[OfferDef, OfferTarget]], now: datetime
    ) -> list[dict[str, Any]]:
        """The outcome effects of first-N offers given at enrolment (a voucher is issued)."""
        effects: list[dict[str, Any]] = []
        for offer, target in given:
            effect: dict[str, Any] = {"kind": "offer_given", "offer": offer.code}
            effect["slot"] = target.slot
            if offer.kind == "voucher":
                self.session.flush()
                found = service.deliver(
                    self.session, programme=self.programme, offer=offer, targets=[target], now=now
                )
                effect.update({k: v for k, v in found[0].items() if k != "kind"} if found else {})
            effects.append(effect)
        return effects

    @staticmethod
    def balances(state: MemberState, ruled: Evaluation, evaluation: Evaluation) -> MemberState:
        """The state's wallet balances moved by the awards offers and plans added too."""
        balances = dict(state.balances)
        for award in evaluation.awards[len(ruled.awards) :]:
            balances[award.wallet] = balances.get(award.wallet, 0) + award.amount
        return replace(state, balances=balances)

    def boost(
        self, evaluation: Evaluation, event: EngineEvent, event_id: uuid.UUID, member_id: uuid.UUID
    ) -> Evaluation:
        """``evaluation`` with the extra awards of the member's plan and boosters."""
        purchase = event.purchase
        if purchase is None or not evaluation.awards:
            return evaluation
        extra: list[Award] = []
        sub = self.subs.get(member_id)
        plan = self.plans.get(sub.plan) if sub is not None else None
        if sub is not None and plan is not None and _live_at(sub, plan, event):
            award = _extra(
                evaluation,
                f"plan:{plan.code}",
                self.version,
                plan.benefits.wallet,
                plan.benefits.earning_multiplier,
            )
            extra += [award] if award is not None else []
        for target in self.targets.get(member_id, []):
            offer = self.boosters[target.offer]
            if not _usable(offer, target, event):
                continue
            assert offer.multiplier is not None
            award = _extra(
                evaluation, f"offer:{offer.code}", self.version, offer.wallet, offer.multiplier
            )
            if award is not None:
                extra.append(award)
                service.record_use(
                    self.session,
                    target,
                    ref=str(event_id),
                    revenue=basket_amount(purchase),
                    at=event.occurred_at,
                )
        if not extra:
            return evaluation
        return Evaluation((*evaluation.effects, *extra), evaluation.skipped)

    def on_enrolment(
        self, evaluation: Evaluation, event: EngineEvent, member_id: uuid.UUID
    ) -> tuple[Evaluation, list[tuple[OfferDef, OfferTarget]]]:
        """Give the first-N offers this enrolment takes a slot of: a points offer's award is
        added to ``evaluation``; the other kinds are delivered by the caller."""
        given: list[tuple[OfferDef, OfferTarget]] = []
        extra: list[Award] = []
        for offer in self.first_n:
            assert offer.first_n is not None
            after = offer.first_n.enrolled_after
            if after is not None and event.occurred_at < after:
                continue
            if service.status_of(offer, event.occurred_at) != "active":
                continue
            slot = self._claim(offer)
            if slot is None:
                continue
            target = service.new_target(
                self.programme, offer, member_id, source="first_n", now=event.occurred_at, slot=slot
            )
            self.session.add(target)
            if offer.kind == "booster":
                self.targets.setdefault(member_id, []).append(target)
            if offer.kind == "points":
                assert offer.amount is not None
                extra.append(Award(f"offer:{offer.code}", self.version, offer.wallet, offer.amount))
                service.record_use(
                    self.session, target, ref="given", revenue=Decimal(0), at=event.occurred_at
                )
            given.append((offer, target))
        if extra:
            evaluation = Evaluation((*evaluation.effects, *extra), evaluation.skipped)
        return evaluation, given

    def _claim(self, offer: OfferDef) -> int | None:
        """Take the next slot of ``offer`` (locks its counter row), or None when all are gone."""
        assert offer.first_n is not None
        key = (self.programme.id, offer.code, offer.first_n.count)  # a new N is asked again
        with _FULL_LOCK:
            if key in _FULL:
                return None
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert(OfferCounter)
            .values(programme_id=self.programme.id, offer=offer.code, claimed=0)
            .on_conflict_do_nothing()
        )
        slot = self.session.scalar(
            update(OfferCounter)
            .where(
                OfferCounter.programme_id == self.programme.id,
                OfferCounter.offer == offer.code,
                OfferCounter.claimed < offer.first_n.count,
            )
            .values(claimed=OfferCounter.claimed + 1)
            .returning(OfferCounter.claimed)
            .execution_options(synchronize_session=False)
        )
        if slot is None:
            with _FULL_LOCK:
                _FULL.add(key)
        return slot


def _live_at(sub: Subscription, plan: PlanDef, event: EngineEvent) -> bool:
    if event.occurred_at < sub.started_at or plan.benefits.earning_multiplier <= 1:
        return False
    return plans.effective(sub, plan, event.occurred_at) in LIVE_STATES


def _usable(offer: OfferDef, target: OfferTarget, event: EngineEvent) -> bool:
    at = event.occurred_at
    if at < target.valid_from or (target.valid_until is not None and at >= target.valid_until):
        return False
    return offer.max_uses is None or target.uses < offer.max_uses


def _extra(
    evaluation: Evaluation, rule_id: str, version: int, wallet: str, multiplier: Decimal
) -> Award | None:
    """``(multiplier - 1)`` times the line-allocated awards into ``wallet``, line by line."""
    by_line: dict[str, Decimal] = {}
    money = False
    for award in evaluation.awards:
        if (
            award.wallet != wallet
            or not award.lines
            or award.rule_id.startswith(("offer:", "plan:"))
        ):
            continue
        money = money or isinstance(award.amount, Decimal)
        for share in award.lines:
            by_line[share.sku] = by_line.get(share.sku, Decimal(0)) + Decimal(share.amount)
    quantum = Decimal("0.01") if money else Decimal(1)
    lines = []
    for sku, earned in by_line.items():
        part = (earned * (multiplier - 1)).quantize(quantum, ROUND_DOWN)
        if part > 0:
            lines.append(LineShare(sku, earned, part if money else int(part)))
    if not lines:
        return None
    total: Any = sum((Decimal(line.amount) for line in lines), Decimal(0))
    base = sum(by_line.values(), Decimal(0))
    return Award(
        rule_id,
        version,
        wallet,
        total if money else int(total),
        base,
        None,
        multiplier,
        tuple(lines),
    )


def extras_for(session: Session, programme: Programme) -> Extras | None:
    """The batch's extras, or None when no offer or plan of the live document changes
    earning (then nothing is read)."""
    sections = sections_for(session, programme)
    if not sections.raw_offers and not sections.plans:
        return None
    offers = service.offers_of(session, programme)
    boosters = {c: o for c, o in offers.items() if o.kind == "booster"}
    first_n = sorted((o for o in offers.values() if o.first_n), key=lambda o: o.code)
    multiplied = {c: p for c, p in sections.plans.items() if p.benefits.earning_multiplier > 1}
    if not boosters and not first_n and not multiplied:
        return None
    return Extras(session, programme, sections.version, boosters, first_n, multiplied)
