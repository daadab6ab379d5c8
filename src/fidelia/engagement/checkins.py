"""Store check-in by geolocation: a ``store_check_in`` event accepted within the store's radius.

:func:`check` runs in the intake before anything is written for the event: a refusal is a
rejected event (nothing written) whose error is ``check_in_refused`` and whose ``reason`` field
says why (:data:`~fidelia.engagement.checkins_schemas.REASONS`). An accepted check-in is stored
with the batch (one per member, store and local day: a unique key, so a concurrent twin fails
the batch, which is checked again and refused as ``already_checked_in``).
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fidelia.engagement.checkins_schemas import CheckInPosition, StoreDef
from fidelia.errors import FideliaError, FieldError
from fidelia.kit.ids import uuid7
from fidelia.models import Programme
from fidelia.models.engagement_plus import StoreCheckIn
from fidelia.rules.state import EngineEvent

if TYPE_CHECKING:
    from fidelia.engagement.plus import PlusDefinitions, PlusRun

EVENT_TYPE = "store_check_in"
_EARTH_M = 6_371_000.0


class CheckInRefused(FideliaError):
    status_code = 422
    code = "check_in_refused"

    @classmethod
    def because(cls, reason: str, detail: str, loc: tuple[str | int, ...]) -> CheckInRefused:
        """The refusal: ``reason`` is the field error's message and the detail's first word."""
        return cls(f"{reason}: {detail}", fields=[FieldError(loc, reason)])


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_M * math.asin(math.sqrt(a))


def check(
    session: Session,
    *,
    programme: Programme,
    defs: PlusDefinitions,
    member_id: uuid.UUID,
    event: EngineEvent,
    taken: set[tuple[uuid.UUID, str, str]],
) -> dict[str, Any]:
    """The check-in row to store for ``event``, or :class:`CheckInRefused` with its reason.

    ``taken`` holds the batch's accepted check-ins (member, store, day) and receives this one."""
    section = defs.check_in
    assert section is not None
    try:
        position = CheckInPosition.model_validate(event.properties)
    except ValidationError as exc:
        loc = ("properties", *exc.errors()[0]["loc"])
        raise CheckInRefused.because(
            "position_missing", "latitude, longitude and accuracy_m", loc
        ) from exc
    store = _store(defs, event.store, position)
    away = distance_m(position.latitude, position.longitude, store.latitude, store.longitude)
    if position.accuracy_m > section.max_accuracy_m:
        raise CheckInRefused.because(
            "position_inaccurate",
            f"accuracy {position.accuracy_m:.0f} m is worse than {section.max_accuracy_m} m",
            ("properties", "accuracy_m"),
        )
    if away - position.accuracy_m > store.radius_m:
        raise CheckInRefused.because(
            "too_far",
            f"{away:.0f} m from store {store.code!r} (radius {store.radius_m} m)",
            ("properties", "latitude"),
        )
    day = event.occurred_at.astimezone(defs.tz).date().isoformat()
    key = (member_id, store.code, day)
    seen = key in taken or session.scalar(
        select(StoreCheckIn.id).where(
            StoreCheckIn.programme_id == programme.id,
            StoreCheckIn.member_id == member_id,
            StoreCheckIn.store == store.code,
            StoreCheckIn.day == day,
        )
    )
    if seen:
        raise CheckInRefused.because(
            "already_checked_in", f"already checked in at {store.code!r} on {day}", ("store",)
        )
    taken.add(key)
    return {"store": store.code, "day": day, "distance_m": round(away)}


def _store(defs: PlusDefinitions, code: str | None, position: CheckInPosition) -> StoreDef:
    """The event's store, or (none named) the nearest declared store."""
    stores = defs.stores
    if code is not None:
        if code not in stores:
            raise CheckInRefused.because(
                "unknown_store", f"no store {code!r} in the programme", ("store",)
            )
        return stores[code]
    return min(
        stores.values(),
        key=lambda s: distance_m(position.latitude, position.longitude, s.latitude, s.longitude),
    )


def record(
    run: PlusRun, member_id: uuid.UUID, event: EngineEvent, event_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Queue the screened check-in of an accepted event for the batch's write."""
    found = run.screened.pop(f"check_in:{event.id}", None)
    if found is None:
        return []
    run.check_ins.append(
        {
            "id": uuid7(),
            "programme_id": run.programme.id,
            "member_id": member_id,
            "event_id": event_id,
            "checked_in_at": event.occurred_at,
            **found,
        }
    )
    return [{"kind": "checked_in", **found}]


def write(run: PlusRun) -> None:
    if run.check_ins:
        run.session.execute(insert(StoreCheckIn), run.check_ins)
