"""The ``check_in`` section of a programme document: stores with coordinates and a radius.

A ``store_check_in`` event carries the device's ``latitude``, ``longitude`` and ``accuracy_m``.
It is accepted when the position is within the store's radius, allowing for the accuracy (the
circle of uncertainty touches the store's circle) and if the accuracy is no worse than
``max_accuracy_m``; at most once per member, store and local day. Rules earn on the event type.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fidelia.engagement.schemas import Slug

REASONS = (
    "unknown_store",
    "position_missing",
    "position_inaccurate",
    "too_far",
    "already_checked_in",
)


class StoreDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Slug
    name: str = Field(min_length=1, max_length=200)
    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    radius_m: Annotated[int, Field(ge=10, le=5000)] = 100


class CheckInSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_accuracy_m: Annotated[int, Field(ge=5, le=2000)] = 150
    stores: list[StoreDef] = Field(min_length=1, max_length=5000)


class CheckInPosition(BaseModel):
    """The properties of a ``store_check_in`` event (the store is the event's ``store``)."""

    model_config = ConfigDict(extra="allow")

    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    accuracy_m: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
