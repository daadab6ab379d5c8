"""The live path re-evaluates, per member, only the segments that member's own events can move:
in a mixed group nobody misses an entry, and nobody is evaluated for what their event cannot
change (the sweep catches the rest)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import SegmentChange, SegmentMember
from tests.fixtures.events import consent_changed, line, purchase
from tests.fixtures.factories import Api, unique_email
from tests.segments.conftest import (
    CAT_BUYERS,
    NOW,
    SMS_NOT_EMAIL,
    THREE_IN_90,
    apply,
    buy,
    document,
    enrol,
    segments_of,
)


def _batch(api: Api, events: list[dict[str, object]]) -> list[str]:
    response = api.post("/events/batch", json={"events": events}, scope="integration")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all(r.get("event_id") for r in results), results
    return [str(r["event_id"]) for r in results]


def _toys(member_id: str) -> dict[str, object]:
    return purchase(
        {"id": member_id},
        lines=[line("sku-1", 1, "10.00", category="toys")],
        occurred_at=NOW - timedelta(hours=1),
    )


def test_in_one_group_each_member_moves_in_exactly_the_segment_their_event_moves(
    api: Api, database: Database
) -> None:
    apply(api, document(THREE_IN_90, SMS_NOT_EMAIL, CAT_BUYERS))
    buyer, subscriber, other = (enrol(api, unique_email()) for _ in range(3))
    for days in (20, 10):
        buy(api, buyer, days_ago=days)
    assert segments_of(api, buyer) == segments_of(api, subscriber) == []

    ids = _batch(
        api,
        [
            _toys(buyer),  # third purchase in 90 days: three-in-90 only
            consent_changed({"id": subscriber}, "sms", True),  # sms-not-email only
            _toys(other),  # a first purchase: moves nothing
        ],
    )

    assert segments_of(api, buyer) == ["three-in-90"]
    assert segments_of(api, subscriber) == ["sms-not-email"]
    assert segments_of(api, other) == []
    with database.transaction(readonly=True) as session:
        rows = session.execute(
            select(SegmentChange.member_id, SegmentChange.segment, SegmentChange.event_id)
            .where(SegmentChange.programme_id == api.programme.id)
            .order_by(SegmentChange.seq)
        ).all()
    assert {(str(m), s, str(e)) for m, s, e in rows} == {
        (buyer, "three-in-90", ids[0]),
        (subscriber, "sms-not-email", ids[1]),
    }


def test_a_purchase_does_not_re_evaluate_consent_segments_even_beside_a_consent_event(
    api: Api, database: Database
) -> None:
    apply(api, document(THREE_IN_90, SMS_NOT_EMAIL))
    buyer, subscriber = enrol(api, unique_email()), enrol(api, unique_email())
    with database.transaction() as session:  # a membership the buyer no longer deserves
        session.add(
            SegmentMember(
                programme_id=api.programme.id,
                segment="sms-not-email",
                member_id=uuid.UUID(buyer),
                since=NOW,
            )
        )

    _batch(api, [_toys(buyer), consent_changed({"id": subscriber}, "sms", True)])

    # the group holds a consent event, but the buyer's own event is a purchase: their consent
    # segments are not evaluated (per member, not per group)
    assert segments_of(api, buyer) == ["sms-not-email"]
    assert segments_of(api, subscriber) == ["sms-not-email"]
    swept = api.post("/segments/sweep", json={})
    assert swept.status_code == 200, swept.text
    assert segments_of(api, buyer) == []
    assert segments_of(api, subscriber) == ["sms-not-email"]
