"""Segments through the API: definitions versioned with the document, live memberships after
events with their history, previews, members, counts, export and bad input."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import ProgrammeVersion, SegmentChange, SegmentMember
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.segments.conftest import (
    CAT_BUYERS,
    SMS_NOT_EMAIL,
    THREE_IN_90,
    apply,
    buy,
    document,
    enrol,
    segment,
    segments_of,
)


def test_a_member_enters_after_the_event_that_qualifies_them(api: Api, database: Database) -> None:
    apply(api, document(THREE_IN_90, CAT_BUYERS))
    member = enrol(api, unique_email())
    buy(api, member, days_ago=100)  # outside the 90 days
    buy(api, member, days_ago=10)
    buy(api, member, days_ago=5)
    assert segments_of(api, member) == []
    third = buy(api, member, days_ago=1, category="cat-food")
    assert segments_of(api, member) == ["cat-buyers", "three-in-90"]
    with database.transaction(readonly=True) as session:
        rows = session.scalars(
            select(SegmentChange)
            .where(SegmentChange.programme_id == api.programme.id)
            .order_by(SegmentChange.seq)
        ).all()
    assert [(r.segment, r.kind, r.cause) for r in rows] == [
        ("cat-buyers", "segment_entered", "event"),
        ("three-in-90", "segment_entered", "event"),
    ]
    assert {str(r.event_id) for r in rows} == {third["event_id"]}


def test_the_sweep_takes_out_who_time_moved_out(api: Api) -> None:
    apply(api, document(CAT_BUYERS))
    member = enrol(api, unique_email())
    buy(api, member, days_ago=29.9, category="cat-food")
    assert segments_of(api, member) == ["cat-buyers"]
    later = api.post("/segments/sweep", json={"at": "2099-01-01T00:00:00Z"})
    assert later.status_code == 200, later.text
    assert later.json()["left"] == 1
    assert segments_of(api, member) == []
    again = api.post("/segments/sweep", json={"at": "2099-01-01T00:00:00Z"}).json()
    assert (again["entered"], again["left"]) == (0, 0)
    feed = api.get("/segments/changes", scope="read").json()
    assert [(c["kind"], c["cause"]) for c in feed] == [
        ("segment_entered", "event"),
        ("segment_left", "sweep"),
    ]
    assert feed[0]["seq"] < feed[1]["seq"]
    assert api.get(f"/segments/changes?after={feed[0]['seq']}", scope="read").json() == feed[1:]


def test_create_makes_a_new_version_and_fills_the_segment(api: Api, database: Database) -> None:
    apply(api, document())
    sms = enrol(api, unique_email(), [{"channel": "sms", "granted": True}])
    both = enrol(
        api,
        unique_email(),
        [{"channel": "sms", "granted": True}, {"channel": "email", "granted": True}],
    )
    response = api.post("/segments", json=SMS_NOT_EMAIL)
    assert response.status_code == 201, response.text
    assert response.json()["members"] == 1
    assert segments_of(api, sms) == ["sms-not-email"]
    assert segments_of(api, both) == []
    with database.transaction(readonly=True) as session:
        versions = session.scalars(
            select(ProgrammeVersion.version).where(
                ProgrammeVersion.programme_id == api.programme.id
            )
        ).all()
        live = session.scalar(
            select(ProgrammeVersion.document)
            .where(ProgrammeVersion.programme_id == api.programme.id)
            .order_by(ProgrammeVersion.version.desc())
            .limit(1)
        )
    assert sorted(versions) == [1, 2]
    assert live is not None
    assert [d["code"] for d in live["segments"]["definitions"]] == ["sms-not-email"]
    assert "not" in live["segments"]["definitions"][0]["condition"]["all"][1]
    again = api.post("/segments", json=SMS_NOT_EMAIL)
    assert again.status_code == 409, again.text


def test_update_re_evaluates_with_cause_definition(api: Api) -> None:
    apply(api, document(segment("ana", {"field": "profile.first_name", "op": "eq", "value": "X"})))
    member = enrol(api, unique_email())
    assert segments_of(api, member) == []
    # the sweep after the new version (its job) is the segment's first evaluation: the
    # change below is then news, with history
    assert api.post("/segments/sweep", json={}).status_code == 200
    body = {"labels": {"en": "Ana"}, "condition": {"field": "profile.first_name", "op": "eq",
                                                    "value": "Ana"}}  # fmt: skip
    response = api.put("/segments/ana", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["members"] == 1
    assert segments_of(api, member) == ["ana"]
    feed = api.get("/segments/changes", scope="read").json()
    assert [c["cause"] for c in feed] == ["definition"]
    assert api.put("/segments/nope", json=body).status_code == 404


def test_unknown_fields_are_422_with_their_path_and_save_nothing(
    api: Api, database: Database
) -> None:
    apply(api, document())
    cases = [
        ({"field": "traits.shoe_size", "op": "gte", "value": 1}, "unknown trait"),
        ({"field": "categories.hamsters.count", "op": "gte", "value": 1}, "unknown category"),
        ({"field": "wallets.miles", "op": "gte", "value": 1}, "unknown wallet"),
        ({"field": "profile.shoe", "op": "eq", "value": "x"}, "unknown profile field"),
        ({"field": "profile.status", "op": "gt", "value": "a"}, "its operators are"),
        ({"field": "events.purchase.count_90d", "op": "gte", "value": "3"}, "numbers"),
    ]
    for leaf, message in cases:
        body = segment("bad", {"any": [{"field": "tier", "op": "exists"}, leaf]})
        response = api.post("/segments", json=body)
        assert response.status_code == 422, response.text
        field = response.json()["fields"][0]
        assert field["loc"][:4] == ["body", "condition", "any", 1], field
        assert message in field["msg"], field
        preview = api.post("/segments/preview", json={"condition": leaf}, scope="read")
        assert preview.status_code == 422, preview.text
    bad_doc = document(segment("bad", {"field": "categories.hamsters.count", "op": "gte",
                                       "value": 1}))  # fmt: skip
    response = api.put("/programme/document", json=bad_doc)
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == [
        "body", "segments", "definitions", 0, "condition", "field",
    ]  # fmt: skip
    with database.transaction(readonly=True) as session:
        versions = session.scalars(
            select(ProgrammeVersion.version).where(
                ProgrammeVersion.programme_id == api.programme.id
            )
        ).all()
    assert list(versions) == [1]


def test_preview_members_counts_and_export(api: Api, database: Database) -> None:
    apply(api, document(THREE_IN_90))
    ids = []
    for _ in range(3):
        member = enrol(api, unique_email())
        for days in (1, 2, 3):
            buy(api, member, days_ago=days)
        ids.append(member)
    enrol(api, unique_email())
    preview = api.post(
        "/segments/preview",
        json={"condition": {"field": "events.purchase.count", "op": "gte", "value": 3},
              "sample": 2},
        scope="read",
    )  # fmt: skip
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 3
    assert len(preview.json()["sample"]) == 2
    page = api.get("/segments/three-in-90/members?limit=2", scope="read").json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = api.get(f"/segments/three-in-90/members?cursor={page['next_cursor']}", scope="read")
    got = [m["member_id"] for m in page["items"] + rest.json()["items"]]
    assert got == sorted(ids)
    counts = api.get("/segments/three-in-90/counts?days=3", scope="read").json()
    assert [c["members"] for c in counts] == [0, 0, 3]
    assert counts[-1]["entered"] == 3
    export = api.get("/segments/three-in-90/export", scope="read")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["member_id"] for r in rows) == sorted(ids)
    listed = api.get("/segments", scope="read").json()
    assert [(s["code"], s["members"]) for s in listed] == [("three-in-90", 3)]
    assert count_rows(database, SegmentMember, SegmentMember.programme_id == api.programme.id) == 3


def test_removing_a_segment_from_the_document_empties_it(api: Api) -> None:
    apply(api, document(CAT_BUYERS))
    member = enrol(api, unique_email())
    buy(api, member, days_ago=1, category="cat-food")
    assert segments_of(api, member) == ["cat-buyers"]
    apply(api, document())
    api.post("/segments/sweep", json={})
    assert segments_of(api, member) == []


def test_segments_of_unknown_member_is_404(api: Api) -> None:
    response = api.get("/members/019ceb9e-6018-78a4-ad11-f033b48438b5/segments", scope="read")
    assert response.status_code == 404
    assert api.get("/segments/nope", scope="read").status_code == 404
