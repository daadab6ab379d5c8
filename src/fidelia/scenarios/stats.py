"""Stats of a scenario: journeys by arm and status, conversion of treated vs holdout with the
absolute lift and its 95 % interval (:func:`fidelia.analytics.lift.compare_rates`), steps by
outcome, messages by channel and status. A handful of GROUP BY queries, whatever the size."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.analytics.lift import compare_means, compare_rates, summarise
from fidelia.models import Event, Programme
from fidelia.models.messaging import Message
from fidelia.models.scenarios import ScenarioJourney, ScenarioStepRun
from fidelia.scenarios import service

REVENUE_DAYS = 30  # the revenue window when the scenario has no goal


def scenario_stats(session: Session, *, programme: Programme, code: str) -> dict[str, Any]:
    j = ScenarioJourney
    arms: dict[str, dict[str, Any]] = {
        arm: {"entered": 0, "active": 0, "completed": 0, "converted": 0, "exited": 0}
        for arm in ("treated", "holdout")
    }
    rows = session.execute(
        select(j.holdout, j.status, func.count(), func.count(j.converted_at))
        .where(j.programme_id == programme.id, j.scenario == code)
        .group_by(j.holdout, j.status)
    )
    for in_holdout, status, count, converted in rows:
        arm = arms["holdout" if in_holdout else "treated"]
        arm["entered"] += count
        arm[status if status in arm else "exited"] += count if status != "converted" else 0
        arm["converted"] += converted
    for arm in arms.values():
        arm["conversion_rate"] = arm["converted"] / arm["entered"] if arm["entered"] else None
    treated, holdout = arms["treated"], arms["holdout"]
    lift = None
    if treated["entered"] and holdout["entered"]:
        found = compare_rates(
            treated["converted"], treated["entered"], holdout["converted"], holdout["entered"]
        )
        lift = {
            "difference": found.difference,
            "ci_low": found.ci_low,
            "ci_high": found.ci_high,
            "relative_lift": found.relative_lift,
            "p_value": found.p_value,
            "significant": found.significant,
            "confidence": found.confidence,
        }
    return {
        "scenario": code,
        "entered": treated["entered"] + holdout["entered"],
        "in_progress": treated["active"] + holdout["active"],
        "converted": treated["converted"] + holdout["converted"],
        "treated": treated,
        "holdout": holdout,
        "lift": lift,
        "revenue": _revenue(session, programme, code),
        "steps": _steps(session, programme, code),
        "messages": _messages(session, programme, code),
    }


def _steps(session: Session, programme: Programme, code: str) -> dict[str, dict[str, int]]:
    r = ScenarioStepRun
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(r.step, r.outcome, func.count())
        .where(r.programme_id == programme.id, r.scenario == code)
        .group_by(r.step, r.outcome)
    )
    for step, outcome, count in rows:
        out.setdefault(step, {})[outcome] = count
    waiting = session.execute(
        select(ScenarioJourney.step, func.count())
        .where(
            ScenarioJourney.programme_id == programme.id,
            ScenarioJourney.scenario == code,
            ScenarioJourney.status == "active",
        )
        .group_by(ScenarioJourney.step)
    )
    for at, count in waiting:
        if at is not None:
            out.setdefault(at, {})["due_here"] = count
    return out


def _messages(session: Session, programme: Programme, code: str) -> dict[str, dict[str, Any]]:
    """Messages of the scenario by channel: how many, how many were delivered, opened and
    clicked (ever), and how many are in each status now."""
    out: dict[str, dict[str, Any]] = {}
    rows = session.execute(
        select(
            Message.channel,
            Message.status,
            func.count(),
            func.count(Message.delivered_at),
            func.count(Message.opened_at),
            func.count(Message.clicked_at),
        )
        .where(Message.programme_id == programme.id, Message.source == f"scenario:{code}")
        .group_by(Message.channel, Message.status)
    )
    for channel, status, count, delivered, opened, clicked in rows:
        mine = out.setdefault(
            channel or "none",
            {"messages": 0, "delivered": 0, "opened": 0, "clicked": 0, "statuses": {}},
        )
        mine["statuses"][status] = count
        mine["messages"] += count
        mine["delivered"] += delivered
        mine["opened"] += opened
        mine["clicked"] += clicked
    return out


def _revenue(session: Session, programme: Programme, code: str) -> dict[str, Any]:
    """Purchase totals per member within the goal's window after entry (30 days without a
    goal), per arm, and the difference of means with Welch's 95 % interval. Returns are not
    taken off."""
    section = service.section_for(session, programme)
    scenario = section.get(code) if section else None
    seconds = scenario.goal.within.seconds() if scenario and scenario.goal else REVENUE_DAYS * 86400
    window = timedelta(seconds=seconds)
    journeys = session.execute(
        select(
            ScenarioJourney.member_id, ScenarioJourney.holdout, ScenarioJourney.entered_at
        ).where(ScenarioJourney.programme_id == programme.id, ScenarioJourney.scenario == code)
    ).all()
    members = sorted({j.member_id for j in journeys})
    bought: dict[Any, list[tuple[Any, Decimal]]] = {}
    for start in range(0, len(members), 5000):
        for member_id, at, properties in session.execute(
            select(Event.member_id, Event.occurred_at, Event.properties).where(
                Event.programme_id == programme.id,
                Event.type == "purchase",
                Event.member_id.in_(members[start : start + 5000]),
            )
        ):
            total = (properties or {}).get("total")
            if total is not None:
                bought.setdefault(member_id, []).append((at, Decimal(str(total))))
    arms: dict[bool, list[float]] = {True: [], False: []}
    for j in journeys:
        spent = sum(
            (
                t
                for at, t in bought.get(j.member_id, [])
                if j.entered_at <= at <= j.entered_at + window
            ),
            Decimal(0),
        )
        arms[bool(j.holdout)].append(float(spent))
    out: dict[str, Any] = {
        "window_days": seconds / 86400,
        "treated_per_member": sum(arms[False]) / len(arms[False]) if arms[False] else None,
        "holdout_per_member": sum(arms[True]) / len(arms[True]) if arms[True] else None,
        "difference": None,
    }
    if len(arms[False]) >= 2 and len(arms[True]) >= 2:
        found = compare_means(summarise(arms[False]), summarise(arms[True]))
        out["difference"] = {
            "difference": found.difference, "ci_low": found.ci_low, "ci_high": found.ci_high,
            "p_value": found.p_value, "significant": found.significant,
        }  # fmt: skip
    return out
