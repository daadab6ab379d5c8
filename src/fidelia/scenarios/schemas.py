"""The ``scenarios`` section of the programme document: journeys a member goes through.

A scenario has one entry (an event, a segment change, a date trait, inactivity or a schedule),
a re-entry policy, an audience condition, a holdout percentage, a goal and a list of steps.
Steps are named by ``id``; each goes to ``next`` (default: the following step; after the last
one the journey is completed). The graph is checked when the document is applied: every
target exists and every cycle passes through a wait.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.errors import ValidationFailed
from fidelia.kit.bounds import Day, FreeJson
from fidelia.kit.conditions import Condition

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
EventType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
LocalTime = Annotated[str, Field(max_length=5, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DateTrait = Literal[
    "birthday", "enrolment_anniversary", "expected_next_purchase", "points_expiring"
]
AttributeValue = (
    Annotated[str, Field(max_length=500)]
    | Annotated[int, Field(ge=-(10**15), le=10**15)]
    | Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]
    | bool
    | None
)
Outcome = Literal["delivered", "opened", "clicked", "bounced", "sent", "not_sent"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Duration(Strict):
    days: int = Field(default=0, ge=0, le=3650)
    hours: int = Field(default=0, ge=0, le=24 * 3650)
    minutes: int = Field(default=0, ge=0, le=60 * 24 * 3650)

    def seconds(self) -> int:
        return ((self.days * 24 + self.hours) * 60 + self.minutes) * 60


# -- entries ------------------------------------------------------------------------------------


class EventEntry(Strict):
    """Enter on an event of ``event`` type that meets ``condition`` (``event.*`` fields)."""

    kind: Literal["event"]
    event: EventType
    condition: Condition | None = None


class SegmentEntry(Strict):
    """Enter when a member enters (or leaves) a segment (the ``segment_changes`` feed)."""

    kind: Literal["segment"]
    segment: Code
    change: Literal["entered", "left"] = "entered"


class DateEntry(Strict):
    """Enter on a date trait, ``days_before`` it (negative: that many days after it; points
    expiring: within that many days), checked once per local day at ``at``."""

    kind: Literal["date"]
    trait: DateTrait
    days_before: int = Field(default=0, ge=-366, le=366)
    at: LocalTime = "09:00"


class InactivityEntry(Strict):
    """Enter when a member's last event of ``event`` type is more than ``days`` old."""

    kind: Literal["inactivity"]
    event: EventType = "purchase"
    days: int = Field(ge=1, le=3650)


class ScheduleEntry(Strict):
    """A send to a segment (or every active member): once ``on`` a date, or every
    ``every_days`` from it, at the local time ``at``."""

    kind: Literal["schedule"]
    segment: Code | None = None
    on: Day
    at: LocalTime = "10:00"
    every_days: int | None = Field(default=None, ge=1, le=366)


Entry = Annotated[
    EventEntry | SegmentEntry | DateEntry | InactivityEntry | ScheduleEntry,
    Field(discriminator="kind"),
]

# -- steps --------------------------------------------------------------------------------------


class UntilEvent(Strict):
    event: EventType
    condition: Condition | None = None
    timeout: Duration
    on_timeout: Code | None = None  # default: ``next``


class Wait(Strict):
    """Wait a duration; or until a local time (on given weekdays); or ``days_before`` a
    date trait; or until an event (then ``next``), at most ``timeout`` (then ``on_timeout``)."""

    id: Code
    kind: Literal["wait"]
    duration: Duration | None = None
    until_time: LocalTime | None = None
    days: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)
    until_trait: DateTrait | None = None
    days_before: int = Field(default=0, ge=0, le=366)
    until_event: UntilEvent | None = None
    next: Code | None = None

    @model_validator(mode="after")
    def _one(self) -> Wait:
        given = [self.duration, self.until_time, self.until_trait, self.until_event]
        if sum(g is not None for g in given) != 1:
            raise ValueError("give one of duration, until_time, until_trait, until_event")
        if self.days is not None and self.until_time is None:
            raise ValueError("days goes with until_time")
        return self


class MessageOutcome(Strict):
    step: Code  # the action step that sent it
    outcome: Outcome


class Branch(Strict):
    """Go to ``then`` when the test holds, else to ``else``: a ``condition`` (over
    ``member.*``, ``traits.*``, ``event.*``), a ``message`` outcome, or a random ``split``
    (percent of journeys to ``then``, deterministic per journey)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Code
    kind: Literal["branch"]
    condition: Condition | None = None
    message: MessageOutcome | None = None
    split: float | None = Field(default=None, gt=0, lt=100, allow_inf_nan=False)
    then: Code
    else_: Code | None = Field(default=None, alias="else")

    @model_validator(mode="after")
    def _one(self) -> Branch:
        if sum(g is not None for g in (self.condition, self.message, self.split)) != 1:
            raise ValueError("give one of condition, message, split")
        return self


class SendMessage(Strict):
    type: Literal["message"]
    template: Code
    channels: list[Literal["email", "sms", "inbox", "webhook"]] = Field(
        default_factory=list, max_length=4
    )
    content_key: Code | None = None
    expires_hours: int | None = Field(default=None, ge=1, le=24 * 90)


class AwardPoints(Strict):
    type: Literal["award"]
    wallet: Code = "points"
    amount: int = Field(ge=1, le=10_000_000)


class IssueVoucher(Strict):
    type: Literal["voucher"]
    pool: Code


class GiveBadge(Strict):
    type: Literal["badge"]
    badge: Code


class SetAttribute(Strict):
    type: Literal["attribute"]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    value: AttributeValue


class CallWebhook(Strict):
    type: Literal["webhook"]
    template: Code  # a template of the messaging section, sent on its webhook channel


class EmitEvent(Strict):
    type: Literal["emit"]
    event: EventType
    properties: FreeJson = Field(default_factory=dict)


Do = Annotated[
    SendMessage | AwardPoints | IssueVoucher | GiveBadge | SetAttribute | CallWebhook | EmitEvent,
    Field(discriminator="type"),
]


class Action(Strict):
    id: Code
    kind: Literal["action"]
    do: Do
    next: Code | None = None


class Exit(Strict):
    id: Code
    kind: Literal["exit"]


Step = Annotated[Wait | Branch | Action | Exit, Field(discriminator="kind")]


class Goal(Strict):
    """A conversion: an event of ``event`` type (meeting ``condition``) within ``within``
    of the entry ends the journey as converted."""

    event: EventType
    condition: Condition | None = None
    within: Duration = Field(default_factory=lambda: Duration(days=7))


ExitOn = Literal["consent_withdrawn", "closed", "merged", "goal"]
EXITS: tuple[ExitOn, ...] = ("consent_withdrawn", "closed", "merged", "goal")


class Scenario(Strict):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    entry: Entry
    audience: Condition | None = None
    re_entry: Literal["once", "once_per_period", "always"] = "once"
    period_days: int | None = Field(default=None, ge=1, le=3650)
    holdout_percent: float = Field(default=10, ge=0, le=90, allow_inf_nan=False)
    goal: Goal | None = None
    exit_on: list[ExitOn] = Field(default_factory=lambda: list(EXITS), max_length=4)
    steps: list[Step] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _period(self) -> Scenario:
        if (self.re_entry == "once_per_period") != (self.period_days is not None):
            raise ValueError("period_days goes with re_entry: once_per_period (and only there)")
        return self

    def step(self, step_id: str) -> Wait | Branch | Action | Exit | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def after(self, index: int) -> str | None:
        """The step after ``steps[index]`` in list order (None: the end)."""
        return self.steps[index + 1].id if index + 1 < len(self.steps) else None


class ScenariosSection(Strict):
    """``scenarios`` of the document: a control group kept out of every scenario, and the
    scenarios."""

    control_percent: float = Field(default=0, ge=0, le=50, allow_inf_nan=False)
    definitions: list[Scenario] = Field(default_factory=list, max_length=100)

    def get(self, code: str) -> Scenario | None:
        return next((s for s in self.definitions if s.code == code), None)


def targets(scenario: Scenario, index: int) -> list[tuple[str, str | None, bool]]:
    """The steps ``steps[index]`` may go to: (field, target, through a wait)."""
    step = scenario.steps[index]
    after = scenario.after(index)
    if isinstance(step, Exit):
        return []
    if isinstance(step, Branch):
        return [("then", step.then, False), ("else", step.else_ or after, False)]
    if isinstance(step, Wait):
        found = [("next", step.next or after, True)]
        if step.until_event is not None:
            found.append(("until_event.on_timeout", step.until_event.on_timeout or after, True))
        return found
    return [("next", step.next or after, False)]


def check_section(section: ScenariosSection, loc: tuple[str | int, ...] = ("scenarios",)) -> None:
    """Codes unique, step ids unique, every target a step, every cycle through a wait."""
    seen: set[str] = set()
    for i, scenario in enumerate(section.definitions):
        here = (*loc, "definitions", i)
        if scenario.code in seen:
            raise ValidationFailed.on((*here, "code"), f"duplicate code {scenario.code!r}")
        seen.add(scenario.code)
        _check_graph(scenario, here)


def _check_graph(scenario: Scenario, loc: tuple[str | int, ...]) -> None:
    ids: dict[str, int] = {}
    for j, step in enumerate(scenario.steps):
        if step.id in ids:
            raise ValidationFailed.on((*loc, "steps", j, "id"), f"duplicate step id {step.id!r}")
        ids[step.id] = j
    edges: dict[int, list[int]] = {}
    for j, step in enumerate(scenario.steps):
        for name, target, _ in targets(scenario, j):
            if target is not None and target not in ids:
                raise ValidationFailed.on(
                    (*loc, "steps", j, *name.split(".")), f"no step {target!r}"
                )
        edges[j] = [ids[t] for _, t, waits in targets(scenario, j) if t is not None and not waits]
        if isinstance(step, Branch) and step.message is not None:
            sender = scenario.step(step.message.step)
            if not (isinstance(sender, Action) and sender.do.type == "message"):
                raise ValidationFailed.on(
                    (*loc, "steps", j, "message", "step"), "not a step that sends a message"
                )
    cycle = _cycle(edges)
    if cycle is not None:
        names = " -> ".join(scenario.steps[k].id for k in cycle)
        raise ValidationFailed.on((*loc, "steps", cycle[0]), f"a cycle without a wait: {names}")


def _cycle(edges: dict[int, list[int]]) -> list[int] | None:
    state: dict[int, int] = {}
    path: list[int] = []

    def visit(node: int) -> list[int] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def parse_local_time(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d\d):(\d\d)", value)
    assert match is not None
    return int(match.group(1)), int(match.group(2))
