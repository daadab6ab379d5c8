"""Subscriptions to paid plans: the lifecycle, and what a subscription gives at a moment.

Design note
-----------
A subscription is ``trialing`` (the plan's trial days), ``active`` (a paid period),
``past_due`` (a payment failed or a period lapsed unpaid: benefits kept for the plan's grace
days), then ``cancelled`` (by the member, the provider or an operator) or ``expired`` (grace
over). Payments move it (:func:`renew`, :func:`payment_failed`), and so does the calendar: a
stored state is *settled* against the clock before any change and whenever it is read
(:func:`effective`), so benefits stop exactly when a period or a grace ends, whether or not a
sweep wrote it yet (:func:`sweep` writes the lapses, dated when they happened). Every change
is a ``subscription_changes`` row naming its cause. Points earned under a benefit stay earned:
nothing here touches the ledger.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.kit.attach import attached
from fidelia.kit.clock import utcnow
from fidelia.kit.prepared import Prepared
from fidelia.members import service as members
from fidelia.models import Programme
from fidelia.models.plans import Subscription, SubscriptionChange
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import LIVE_STATES, PlanDef


class AlreadySubscribed(Conflict):
    code = "already_subscribed"


class SubscriptionEnded(Conflict):
    code = "subscription_ended"


def add_period(at: datetime, period: str) -> datetime:
    """``at`` plus one calendar month or year (the 31st becomes the month's last day)."""
    months = 1 if period == "month" else 12
    year, month = divmod(at.month - 1 + months, 12)
    year, month = at.year + year, month + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Lapse:
    """A state the calendar reached: ``status`` from ``at``."""

    status: str
    at: datetime


def lapses(sub: Subscription, plan: PlanDef | None, now: datetime) -> list[Lapse]:
    """The states the calendar moved ``sub`` through up to ``now`` (oldest first)."""
    found: list[Lapse] = []
    status, grace_until = sub.status, sub.grace_until
    grace = timedelta(days=plan.grace_days if plan is not None else 0)
    if status in ("trialing", "active") and now >= sub.period_end:
        status, grace_until = "past_due", sub.period_end + grace
        found.append(Lapse(status, sub.period_end))
    if status == "past_due" and grace_until is not None and now >= grace_until:
        found.append(Lapse("expired", grace_until))
    return found


def effective(sub: Subscription, plan: PlanDef | None, now: datetime) -> str:
    """The subscription's state at ``now`` (the stored one, moved on by the calendar)."""
    found = lapses(sub, plan, now)
    return found[-1].status if found else sub.status


def plan_of(session: Session, programme: Programme, code: str) -> PlanDef:
    plan = sections_for(session, programme).plans.get(code)
    if plan is None:
        raise ValidationFailed.on("plan", f"no plan {code!r} in the programme document")
    return plan


def _change(
    session: Session,
    sub: Subscription,
    to: str,
    at: datetime,
    *,
    cause: str,
    actor: str | None = None,
    payment_event_id: uuid.UUID | None = None,
    first: bool = False,
) -> None:
    session.add(
        SubscriptionChange(
            programme_id=sub.programme_id,
            subscription_id=sub.id,
            member_id=sub.member_id,
            from_status=None if first else sub.status,
            to_status=to,
            at=at,
            cause=cause,
            actor=actor,
            payment_event_id=payment_event_id,
            period_end=sub.period_end,
        )
    )
    sub.status = to
    if to in ("cancelled", "expired"):
        sub.ended_at = at


def settle(session: Session, sub: Subscription, plan: PlanDef | None, now: datetime) -> None:
    """Write the lapses the calendar reached (dated when they happened)."""
    for lapse in lapses(sub, plan, now):
        if lapse.status == "past_due":
            sub.grace_until = lapse.at + timedelta(days=plan.grace_days if plan else 0)
        _change(session, sub, lapse.status, lapse.at, cause="schedule")


def live_of(
    session: Session, programme: Programme, member_id: uuid.UUID, *, lock: bool = False
) -> Subscription | None:
    """The member's live subscription (as stored), if any."""
    query = select(Subscription).where(
        Subscription.programme_id == programme.id,
        Subscription.member_id == member_id,
        Subscription.status.in_(LIVE_STATES),
    )
    return session.scalar(query.with_for_update() if lock else query)


def latest_of(session: Session, programme: Programme, member_id: uuid.UUID) -> Subscription:
    """The member's live subscription, else their latest one; 404 if they never had one."""
    members.get(session, programme=programme, member_id=member_id)
    sub = session.scalar(
        select(Subscription)
        .where(Subscription.programme_id == programme.id, Subscription.member_id == member_id)
        .order_by(Subscription.status.in_(LIVE_STATES).desc(), Subscription.started_at.desc())
        .limit(1)
    )
    if sub is None:
        raise NotFound(f"member {member_id} has no subscription")
    return sub


def subscribe(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    plan_code: str,
    provider_ref: str | None = None,
    paid: bool = False,
    now: datetime | None = None,
    cause: str = "operator",
    actor: str | None = None,
    payment_event_id: uuid.UUID | None = None,
) -> Subscription:
    """Start a subscription: ``trialing`` for the plan's trial days, else (or ``paid``)
    ``active`` for one period. 409 ``already_subscribed`` if the member has a live one."""
    now = now or utcnow()
    plan = plan_of(session, programme, plan_code)
    if not plan.active:
        raise ValidationFailed.on("plan", f"plan {plan_code!r} takes no new subscriptions")
    members.get_for_update(session, programme=programme, member_id=member_id)
    current = live_of(session, programme, member_id, lock=True)
    if current is not None:
        settle(session, current, sections_for(session, programme).plans.get(current.plan), now)
        if current.status in LIVE_STATES:
            raise AlreadySubscribed(
                f"member {member_id} already has a {current.status} subscription to "
                f"{current.plan!r}"
            )
    if provider_ref is not None and session.scalar(
        select(Subscription.id).where(
            Subscription.programme_id == programme.id, Subscription.provider_ref == provider_ref
        )
    ):
        raise Conflict(f"provider subscription {provider_ref!r} is already recorded")
    trial = plan.trial_days > 0 and not paid
    sub = Subscription(
        programme_id=programme.id,
        member_id=member_id,
        plan=plan.code,
        status="trialing" if trial else "active",
        provider_ref=provider_ref,
        started_at=now,
        trial_ends_at=now + timedelta(days=plan.trial_days) if trial else None,
        period_end=now + timedelta(days=plan.trial_days) if trial else add_period(now, plan.period),
    )
    session.add(sub)
    session.flush()  # the change row points at it
    _change(
        session,
        sub,
        sub.status,
        now,
        cause=cause,
        actor=actor,
        payment_event_id=payment_event_id,
        first=True,
    )
    session.flush()
    return sub


def _locked(session: Session, programme: Programme, sub_id: uuid.UUID) -> Subscription:
    sub = session.get(Subscription, sub_id, with_for_update=True, populate_existing=True)
    if sub is None or sub.programme_id != programme.id:
        raise NotFound(f"subscription {sub_id} does not exist")
    return sub


def _ready(
    session: Session, programme: Programme, sub_id: uuid.UUID, now: datetime
) -> tuple[Subscription, PlanDef | None]:
    """The subscription locked and settled; 409 ``subscription_ended`` if it has ended."""
    sub = _locked(session, programme, sub_id)
    plan = sections_for(session, programme).plans.get(sub.plan)
    settle(session, sub, plan, now)
    if sub.status not in LIVE_STATES:
        raise SubscriptionEnded(f"subscription {sub.id} is {sub.status} since {sub.ended_at}")
    return sub, plan


def renew(
    session: Session,
    *,
    programme: Programme,
    sub_id: uuid.UUID,
    now: datetime | None = None,
    period_end: datetime | None = None,
    cause: str = "operator",
    actor: str | None = None,
    payment_event_id: uuid.UUID | None = None,
) -> Subscription:
    """A period is paid: ``active`` until ``period_end`` (default: one period after the
    current end, or after now if it lapsed)."""
    now = now or utcnow()
    sub, plan = _ready(session, programme, sub_id, now)
    if period_end is None:
        period = plan.period if plan is not None else "month"
        period_end = add_period(max(sub.period_end, now), period)
    if period_end <= now:
        raise ValidationFailed.on("period_end", "must be in the future")
    sub.period_end, sub.grace_until = period_end, None
    _change(
        session, sub, "active", now, cause=cause, actor=actor, payment_event_id=payment_event_id
    )
    session.flush()
    return sub


def payment_failed(
    session: Session,
    *,
    programme: Programme,
    sub_id: uuid.UUID,
    now: datetime | None = None,
    cause: str = "operator",
    actor: str | None = None,
    payment_event_id: uuid.UUID | None = None,
) -> Subscription:
    """A payment failed: ``past_due`` with the plan's grace days (unchanged if already)."""
    now = now or utcnow()
    sub, plan = _ready(session, programme, sub_id, now)
    if sub.status != "past_due":
        sub.grace_until = now + timedelta(days=plan.grace_days if plan is not None else 0)
        _change(
            session,
            sub,
            "past_due",
            now,
            cause=cause,
            actor=actor,
            payment_event_id=payment_event_id,
        )
        session.flush()
    return sub


def cancel(
    session: Session,
    *,
    programme: Programme,
    sub_id: uuid.UUID,
    now: datetime | None = None,
    cause: str = "operator",
    actor: str | None = None,
    payment_event_id: uuid.UUID | None = None,
) -> Subscription:
    """Cancel now: benefits stop at once (points earned under them stay)."""
    now = now or utcnow()
    sub, _ = _ready(session, programme, sub_id, now)
    sub.cancelled_at = now
    _change(
        session, sub, "cancelled", now, cause=cause, actor=actor, payment_event_id=payment_event_id
    )
    session.flush()
    return sub


def sweep(session: Session, *, programme: Programme, now: datetime | None = None) -> int:
    """Write the lapses of every live subscription whose period or grace ended; how many."""
    now = now or utcnow()
    plans = sections_for(session, programme).plans
    due = session.scalars(
        select(Subscription)
        .where(
            Subscription.programme_id == programme.id,
            Subscription.status.in_(LIVE_STATES),
            (Subscription.period_end <= now) | (Subscription.grace_until <= now),
        )
        .order_by(Subscription.id)
        .with_for_update(skip_locked=True)
    ).all()
    moved = 0
    for sub in due:
        before = sub.status
        settle(session, sub, plans.get(sub.plan), now)
        moved += sub.status != before
    session.flush()
    return moved


def history(session: Session, sub: Subscription) -> list[SubscriptionChange]:
    return list(
        session.scalars(
            select(SubscriptionChange)
            .where(SubscriptionChange.subscription_id == sub.id)
            .order_by(SubscriptionChange.at, SubscriptionChange.id)
        )
    )


def counts(session: Session, *, programme: Programme) -> dict[str, dict[str, int]]:
    """Subscriptions per plan and stored status."""
    rows = session.execute(
        select(Subscription.plan, Subscription.status, func.count())
        .where(Subscription.programme_id == programme.id)
        .group_by(Subscription.plan, Subscription.status)
    )
    found: dict[str, dict[str, int]] = {}
    for plan, status, n in rows:
        found.setdefault(plan, {})[status] = n
    return found


def live_for_members(
    session: Session, *, programme: Programme, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Subscription]:
    """The members' live subscriptions (as stored), in one query."""
    found: dict[uuid.UUID, Subscription] = {}
    for start in range(0, len(member_ids), 500):
        params = {"programme_id": programme.id, "members": member_ids[start : start + 500]}
        for values in _LIVE.rows(session, params):
            sub = attached(session, Subscription, values)
            found[sub.member_id] = sub
    return found


_SUBSCRIPTIONS = Subscription.__table__
_LIVE = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(_SUBSCRIPTIONS).where(
        _SUBSCRIPTIONS.c.programme_id == bindparam("programme_id"),
        _SUBSCRIPTIONS.c.member_id.in_(bindparam("members", expanding=True)),
        _SUBSCRIPTIONS.c.status.in_(LIVE_STATES),
    )
)
