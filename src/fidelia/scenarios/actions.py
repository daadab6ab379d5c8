"""What an action step does. Every action is keyed ``scenario:<journey id>:<visit>``, so a tick
run again after a crash (or a step visited again through a loop, with a new visit number) never
sends or awards twice for the same visit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from fidelia.engagement import service as engagement
from fidelia.engagement.rewarding import give_voucher
from fidelia.errors import FideliaError
from fidelia.ledger import operations as ledger
from fidelia.messaging import service as messaging
from fidelia.models import Member, Programme
from fidelia.models.scenarios import ScenarioJourney
from fidelia.scenarios.schemas import Action, Scenario

if TYPE_CHECKING:
    from fidelia.scenarios.engine import Batch


def run(
    session: Session,
    programme: Programme,
    scenario: Scenario,
    step: Action,
    journey: ScenarioJourney,
    member: Member,
    work: Batch,
    now: datetime,
) -> None:
    from fidelia.scenarios.engine import _run  # the engine imports this module

    key = f"scenario:{journey.id}:{journey.visits}"
    do = step.do
    if do.type in ("message", "webhook"):
        run_row = _run(work, journey, step.id, "queued", now)
        expires = getattr(do, "expires_hours", None)
        request = messaging.Request(
            member=member,
            template=do.template,
            content=None,
            channels=list(do.channels) if do.type == "message" else ["webhook"],
            kind=None,
            content_key=getattr(do, "content_key", None),
            event=dict(journey.event),
            expires_at=now + timedelta(hours=expires) if expires else None,
            idempotency_key=key,
            source=f"scenario:{scenario.code}",
        )
        work.messages.append((request, run_row))
        return
    outcome = "done"
    try:
        with session.begin_nested():
            outcome = _apply(session, programme, scenario, do, journey, member, key, now)
    except FideliaError as err:  # a refused award or voucher: recorded, the journey goes on
        outcome = f"failed:{err.code}"[:32]
    if do.type == "emit":
        work.emits.append(
            {
                "id": key,
                "type": do.event,
                "occurred_at": now.isoformat(),
                "member": {"id": str(member.id)},
                "properties": {**do.properties, "scenario": scenario.code},
            }
        )
        outcome = "emitted"
    _run(work, journey, step.id, outcome, now)


def _apply(
    session: Session,
    programme: Programme,
    scenario: Scenario,
    do: Any,
    journey: ScenarioJourney,
    member: Member,
    key: str,
    now: datetime,
) -> str:
    if do.type == "award":
        ledger.award(
            session,
            programme=programme,
            member_id=member.id,
            wallet=do.wallet,
            amount=do.amount,
            idempotency_key=key,
            source_type="scenario",
            source_id=scenario.code,
            now=now,
        )
        return "awarded"
    if do.type == "voucher":
        effect = give_voucher(
            session,
            programme=programme,
            member_id=member.id,
            ref=do.pool,
            idempotency_key=key,
            source_id=scenario.code,
            now=now,
        )
        return "issued" if effect.get("status") == "issued" else "failed"
    if do.type == "badge":
        engagement.award_badge(
            session,
            programme=programme,
            member_id=member.id,
            badge=do.badge,
            at=now,
            source=f"scenario:{scenario.code}",
            event_id=None,
        )
        return "badge"
    if do.type == "attribute":
        attributes = dict(member.attributes or {})
        if do.value is None:
            attributes.pop(do.name, None)
        else:
            attributes[do.name] = do.value
        member.attributes = attributes
        return "set"
    return "done"
