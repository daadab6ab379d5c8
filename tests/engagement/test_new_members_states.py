"""New members enrolled through events under a programme with badges: their engagement state
and badges are written after the member row, whatever the
order in which the unit of work meets them (a regression: the per-batch reads of issue 18 took
away the query whose autoflush used to write the member first)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import Api, unique_email
from tests.segments.conftest import CAT_BUYERS, apply, document, enrol

ENROLLED = {"code": "enrolled", "name": "Welcome", "event_type": "enrolment"}


def badges_of(api: Api, member: str) -> list[str]:
    response = api.get(f"/members/{member}/badges", scope="read")
    assert response.status_code == 200, response.text
    return [b["badge"] for b in response.json()]


def test_enrolments_after_badges_exist_write_their_states(api: Api) -> None:
    doc: dict[str, Any] = {**document(CAT_BUYERS), "badges": [ENROLLED]}
    apply(api, doc)

    members = [enrol(api, unique_email()) for _ in range(3)]

    assert [badges_of(api, m) for m in members] == [["enrolled"]] * 3
