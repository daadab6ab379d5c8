"""Before publishing: who would enter a scenario now, a back-test of an event entry over the
stored events, and the path one member would take with the messages they would get, rendered.
Nothing here writes."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import ValidationFailed
from fidelia.messaging import service as messaging
from fidelia.messaging.context import context_for
from fidelia.messaging.rendering import pick_locale, public_url, render_content
from fidelia.models import Event, Member, Programme, SegmentMember
from fidelia.models.scenarios import ScenarioJourney
from fidelia.scenarios import entries, service
from fidelia.scenarios.schemas import (
    Action,
    Branch,
    DateEntry,
    EventEntry,
    Exit,
    InactivityEntry,
    Scenario,
    ScenariosSection,
    ScheduleEntry,
    SegmentEntry,
    Wait,
)

SAMPLE = 20


def who_enters_now(
    session: Session,
    programme: Programme,
    section: ScenariosSection,
    scenario: Scenario,
    now: datetime,
) -> dict[str, Any]:
    """For segment, date, inactivity and schedule entries: the members who would enter if the
    entry ran now (re-entry policy and audience applied), with the holdout share."""
    entry = scenario.entry
    if isinstance(entry, EventEntry):
        raise ValidationFailed.on(
            ("entry", "kind"), "an event entry has no 'now': back-test it over past events"
        )
    today = now.astimezone(ZoneInfo(programme.timezone)).date()
    if isinstance(entry, SegmentEntry):
        ids = list(
            session.scalars(
                select(SegmentMember.member_id)
                .where(
                    SegmentMember.programme_id == programme.id,
                    SegmentMember.segment == entry.segment,
                )
                .order_by(SegmentMember.member_id)
            )
        )
        found = [entries.Candidate(scenario, m, "preview", {}, now) for m in ids]
    elif isinstance(entry, ScheduleEntry):
        ids = entries._active_members(session, programme, entry.segment)
        found = [entries.Candidate(scenario, m, "preview", {}, now) for m in ids]
    elif isinstance(entry, InactivityEntry):
        found = entries._inactive(session, programme, scenario, entry, now)
    else:
        assert isinstance(entry, DateEntry)
        found = entries._dated(session, programme, scenario, entry, today, now)
    admitted = _admit(session, programme, section, scenario, found, now)
    holdout = sum(1 for _, h in admitted if h)
    return {
        "entering": len(admitted),
        "treated": len(admitted) - holdout,
        "holdout": holdout,
        "sample": [str(m) for m, _ in admitted[:SAMPLE]],
    }


def _admit(
    session: Session,
    programme: Programme,
    section: ScenariosSection,
    scenario: Scenario,
    found: list[entries.Candidate],
    now: datetime,
) -> list[tuple[uuid.UUID, bool]]:
    if not found:
        return []
    query = select(ScenarioJourney.member_id).where(
        ScenarioJourney.programme_id == programme.id, ScenarioJourney.scenario == scenario.code
    )
    if scenario.re_entry == "once_per_period":
        assert scenario.period_days is not None
        query = query.where(ScenarioJourney.entered_at > now - timedelta(days=scenario.period_days))
    elif scenario.re_entry == "always":
        query = query.where(ScenarioJourney.status == "active")
    past = set(session.scalars(query))
    tz = ZoneInfo(programme.timezone)
    names = service.names_read(scenario)
    out: list[tuple[uuid.UUID, bool]] = []
    members = (
        {
            m.id: m
            for m in session.scalars(
                select(Member).where(Member.programme_id == programme.id, Member.status == "active")
            )
        }
        if (scenario.audience is not None)
        else {}
    )
    for c in found:
        if c.member_id in past:
            continue
        if scenario.audience is not None:
            member = members.get(c.member_id)
            if member is None:
                continue
            ctx = service.context(session, programme, member, c.event, names, now)
            if not service.holds(scenario.audience, ctx, tz):
                continue
        past.add(c.member_id)
        out.append((c.member_id, service.is_holdout(section, scenario, programme.id, c.member_id)))
    return out


def backtest(
    session: Session,
    programme: Programme,
    section: ScenariosSection,
    scenario: Scenario,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """Replay an event entry over the stored events of [since, until): entries per local day
    (re-entry policy applied from an empty history), the holdout split, and the messages the
    treated entries would send on entry (action steps before the first wait or branch)."""
    entry = scenario.entry
    if not isinstance(entry, EventEntry):
        raise ValidationFailed.on(("entry", "kind"), "only an event entry replays over events")
    if until <= since or until - since > timedelta(days=366):
        raise ValidationFailed.on("until", "give since < until, at most 366 days apart")
    tz = ZoneInfo(programme.timezone)
    rows = session.execute(
        select(
            Event.id,
            Event.member_id,
            Event.type,
            Event.occurred_at,
            Event.channel,
            Event.store,
            Event.reference,
            Event.properties,
        )
        .where(
            Event.programme_id == programme.id,
            Event.type == entry.event,
            Event.occurred_at >= since,
            Event.occurred_at < until,
        )
        .order_by(Event.occurred_at, Event.id)
    )
    per_day: Counter[str] = Counter()
    last: dict[uuid.UUID, datetime] = {}
    holdout = 0
    for row in rows:
        if not service.holds(entry.condition, {"event": entries.event_context(row)}, tz):
            continue
        before = last.get(row.member_id)
        if before is not None and not _again(scenario, before, row.occurred_at):
            continue
        last[row.member_id] = row.occurred_at
        per_day[row.occurred_at.astimezone(tz).date().isoformat()] += 1
        holdout += service.is_holdout(section, scenario, programme.id, row.member_id)
    total = sum(per_day.values())
    sends = _sends_on_entry(scenario)
    return {
        "entries": total,
        "members": len(last),
        "holdout": holdout,
        "per_day": dict(sorted(per_day.items())),
        "messages_on_entry_per_day": {d: n * sends for d, n in sorted(per_day.items())},
        "messages_on_entry": (total - holdout) * sends,
    }


def _again(scenario: Scenario, before: datetime, at: datetime) -> bool:
    if scenario.re_entry == "once":
        return False
    if scenario.re_entry == "once_per_period":
        assert scenario.period_days is not None
        return at - before >= timedelta(days=scenario.period_days)
    return True


def _sends_on_entry(scenario: Scenario) -> int:
    count = 0
    for step in scenario.steps:
        if isinstance(step, (Wait, Branch, Exit)):
            break
        if isinstance(step, Action) and step.do.type == "message":
            count += 1
    return count


def path_for(
    session: Session,
    programme: Programme,
    scenario: Scenario,
    member: Member,
    event: dict[str, Any],
    now: datetime,
    *,
    assume_outcome: bool = False,
) -> list[dict[str, Any]]:
    """The steps ``member`` would go through, as of ``now``: waits said, conditions evaluated
    now, message outcomes taken as ``assume_outcome``, messages rendered for the first channel
    that reaches them (or why none does)."""
    tz = ZoneInfo(programme.timezone)
    names = service.names_read(scenario)
    ctx = service.context(session, programme, member, event, names, now)
    out: list[dict[str, Any]] = []
    current: str | None = scenario.steps[0].id
    seen: Counter[str] = Counter()
    while current is not None and len(out) < 100:
        index = next(i for i, s in enumerate(scenario.steps) if s.id == current)
        step, after = scenario.steps[index], scenario.after(index)
        seen[step.id] += 1
        if seen[step.id] > 2:
            out.append({"step": step.id, "kind": "loop", "detail": "loops here: stopped"})
            break
        if isinstance(step, Exit):
            out.append({"step": step.id, "kind": "exit"})
            break
        if isinstance(step, Wait):
            out.append({"step": step.id, "kind": "wait", "detail": _wait_text(step)})
            current = step.next or after
        elif isinstance(step, Branch):
            if step.split is not None:
                taken = service.bucket("split", str(member.id), step.id) < step.split
            elif step.message is not None:
                taken = assume_outcome
            else:
                taken = service.holds(step.condition, ctx, tz)
            out.append({"step": step.id, "kind": "branch", "detail": "then" if taken else "else"})
            current = step.then if taken else (step.else_ or after)
        else:
            assert isinstance(step, Action)
            out.append(
                {
                    "step": step.id,
                    "kind": "action",
                    **_action(session, programme, step, member, event, now),
                }
            )
            current = step.next or after
    return out


def _wait_text(step: Wait) -> str:
    if step.duration is not None:
        return f"{step.duration.days}d {step.duration.hours}h {step.duration.minutes}m"
    if step.until_time is not None:
        return f"until {step.until_time} {','.join(step.days or [])}".strip()
    if step.until_event is not None:
        t = step.until_event.timeout
        return f"until {step.until_event.event} (timeout {t.days}d {t.hours}h {t.minutes}m)"
    return f"until {step.days_before} days before {step.until_trait}"


def _action(
    session: Session,
    programme: Programme,
    step: Action,
    member: Member,
    event: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    do = step.do
    if do.type not in ("message", "webhook"):
        return {"do": do.model_dump(mode="json")}
    section = messaging.require_section(session, programme)
    channels = messaging.check_channels(
        section, list(do.channels) if do.type == "message" else ["webhook"]
    )
    locales, _, kind = messaging.resolve_content(section, do.template, None)
    request = messaging.Request(
        member, do.template, None, channels, None, None, event, None, None, "preview"
    )
    plan = messaging._plan(section, request)
    known = messaging._prefetch(session, programme, [request], with_points=False)
    why: list[str] = []
    for name in channels:
        content = locales[pick_locale(locales, member.locale, programme.locale)]
        reason = messaging.fits(content, name) or messaging._unreachable(
            section, member, name, plan.kind, known
        )
        if isinstance(reason, str):
            why.append(f"{name}: {reason}")
            continue
        base = public_url(section)
        context = context_for(
            session, programme=programme, member=member, event=event, now=now, public_url=base
        )
        context["links"] = {"unsubscribe": f"{base}/unsubscribe/preview"}
        return {
            "do": "message",
            "template": do.template,
            "channel": name,
            "message_kind": kind,
            "rendered": render_content(content, name, context),
        }
    return {"do": "message", "template": do.template, "not_sent": "; ".join(why)}
