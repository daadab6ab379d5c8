"""The ``segments`` section of a programme document, and the segment API's shapes.

A segment is a code, labels per locale and a condition in the rules' condition language over
the fields of :mod:`fidelia.segments.fields`. ``categories`` declares the product categories
conditions may name (``categories.<cat>.count_30d``): a typo is a 422, not an empty segment.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from fidelia.errors import ValidationFailed
from fidelia.examples import examples
from fidelia.kit.bounds import FreeJson, Instant, Labels
from fidelia.kit.conditions import Condition, dump_condition, parse_condition
from fidelia.segments import examples as ex

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
CategoryCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_SEGMENTS = 200


class SegmentDef(BaseModel):
    """One segment: who is in it is decided by ``condition``, kept current live and daily."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=examples(ex.SEGMENT))

    code: Code
    labels: Labels = Field(description="Name per locale, e.g. {'fr': ..., 'en': ...}")
    description: str | None = Field(default=None, max_length=1000)
    condition: Condition

    @model_validator(mode="after")
    def _named(self) -> SegmentDef:
        if not self.labels:
            raise ValueError("give at least one label, e.g. {'fr': ..., 'en': ...}")
        return self

    @field_serializer("condition")
    def _dump_condition(self, condition: Condition) -> Any:
        return dump_condition(condition)  # with its aliases ("not"), as written


class SegmentsSection(BaseModel):
    """The ``segments`` section: the categories conditions may name, and the segments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: list[CategoryCode] = Field(default_factory=list, max_length=1000)
    definitions: list[SegmentDef] = Field(default_factory=list, max_length=MAX_SEGMENTS)

    def get(self, code: str) -> SegmentDef | None:
        return next((s for s in self.definitions if s.code == code), None)


# -- API bodies -------------------------------------------------------------------------------


ConditionJson = Annotated[
    FreeJson,
    Field(description="A condition: all/any/not, or a leaf {field, op, value} (see the guide)"),
]


class SegmentIn(BaseModel):
    """A segment to create (``POST /segments``): saved as a new programme document version."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.SEGMENT))

    code: Code
    labels: Labels = Field(description="Name per locale, e.g. {'fr': ..., 'en': ...}")
    description: str | None = Field(default=None, max_length=1000)
    condition: ConditionJson

    def to_def(self) -> SegmentDef:
        """The document's segment; 422 with the path of a malformed condition."""
        return as_def(self.code, self.labels, self.description, self.condition)


class SegmentUpdate(BaseModel):
    """A new text for an existing segment (``PUT /segments/{code}``); the code stays."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.SEGMENT_UPDATE))

    labels: Labels = Field(description="Name per locale")
    description: str | None = Field(default=None, max_length=1000)
    condition: ConditionJson


def as_def(
    code: str, labels: dict[str, str], description: str | None, condition: dict[str, Any]
) -> SegmentDef:
    parsed = parse_condition(condition, loc=("condition",))
    if not labels:
        raise ValidationFailed.on("labels", "give at least one label, e.g. {'fr': ..., 'en': ...}")
    return SegmentDef(code=code, labels=labels, description=description, condition=parsed)


class PreviewIn(BaseModel):
    """A condition to try before saving it: how many members, and a few of them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.PREVIEW_IN))

    condition: ConditionJson
    sample: int = Field(default=10, ge=0, le=100)

    def parsed(self) -> Condition:
        return parse_condition(self.condition, loc=("condition",))


class SegmentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SEGMENT_OUT))

    code: str
    labels: dict[str, str]
    description: str | None = None
    condition: dict[str, Any]
    members: int = Field(description="Members in the segment now")
    version: int = Field(description="The programme document version that holds this text")


class MemberSample(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SAMPLE))

    member_id: uuid.UUID
    first_name: str | None = None
    last_name: str | None = None
    status: str


class PreviewOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PREVIEW_OUT))

    count: int
    sample: list[MemberSample]
    seconds: float = Field(description="Time the count took on the server")


class SegmentMemberOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SEGMENT_MEMBER))

    member_id: uuid.UUID
    since: datetime
    first_name: str | None = None
    last_name: str | None = None
    status: str
    traits: dict[str, Any] = Field(default_factory=dict, description="The member's traits")


class MembershipOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.MEMBERSHIP))

    segment: str
    labels: dict[str, str]
    since: datetime


class SegmentChangeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.CHANGE))

    seq: int
    segment: str
    member_id: uuid.UUID
    kind: Literal["segment_entered", "segment_left"]
    at: datetime
    cause: str = Field(description="event, sweep, definition or merge")
    event_id: uuid.UUID | None = None


class CountPoint(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.COUNT_POINT))

    day: str = Field(description="Local date (programme time zone), end of day")
    members: int
    entered: int
    left: int


class SweepIn(BaseModel):
    """Re-evaluate every segment for every member now (or as of ``at``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.SWEEP_IN))

    at: Instant | None = None


class SweepOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SWEEP_OUT))

    segments: int
    entered: int
    left: int
    seconds: float


DaysBack = Annotated[int, Field(ge=1, le=3650)]
PageSize = Annotated[int, Field(ge=1, le=500)]
