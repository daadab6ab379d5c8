"""Events that change the member: enrolment, profile_updated, consent_changed; unknown members."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from fidelia.db import Database
from fidelia.models import Event, Member, MemberIdentity, Programme
from tests.fixtures.events import consent_changed, enrolment, event, profile_updated, purchase, ref
from tests.fixtures.factories import Api, count_rows


def members_of(database: Database, api: Api) -> int:
    return count_rows(database, Member, Member.programme_id == api.programme.id)


def test_an_event_for_an_unknown_identity_is_rejected_by_default(
    api: Api, database: Database
) -> None:
    response = api.post("/events", json=purchase({"email": "new@example.com"}))

    assert response.status_code == 422
    assert response.json()["error"] == "unknown_member"
    assert members_of(database, api) == 0
    assert count_rows(database, Event, Event.programme_id == api.programme.id) == 0


def test_with_the_enrol_prospect_policy_an_unknown_identity_becomes_a_prospect(
    api_factory: Callable[[Programme], Api],
    programme_factory: Callable[..., Programme],
    database: Database,
) -> None:
    api = api_factory(programme_factory(settings={"unknown_member": "enrol_prospect"}))

    outcome = api.post(
        "/events", json=purchase({"email": "New@Example.com"}, channel="web", store="web-fr")
    ).json()

    assert outcome["member_created"] is True
    member = api.get(f"/members/{outcome['member_id']}").json()
    assert member["status"] == "prospect"
    assert member["enrolment_channel"] == "web"
    assert member["identities"] == [{"kind": "email", "namespace": "", "value": "new@example.com"}]
    follow_up = api.post("/events", json=purchase({"email": "new@example.com"})).json()
    assert follow_up["member_id"] == outcome["member_id"]
    assert follow_up["member_created"] is False
    assert members_of(database, api) == 1


def test_the_policy_is_changed_through_the_programme_api(api: Api, database: Database) -> None:
    changed = api.patch("/programme", json={"settings": {"unknown_member": "enrol_prospect"}})

    response = api.post("/events", json=event("page_view", {"card": "NEW"}))

    assert changed.json()["settings"]["unknown_member"] == "enrol_prospect"
    assert response.status_code == 201
    assert members_of(database, api) == 1


def test_an_enrolment_event_activates_a_prospect(
    api_factory: Callable[[Programme], Api], programme_factory: Callable[..., Programme]
) -> None:
    api = api_factory(programme_factory(settings={"unknown_member": "enrol_prospect"}))
    prospect = api.post("/events", json=event("page_view", {"phone": "0612345678"})).json()

    outcome = api.post(
        "/events",
        json=enrolment({"phone": "+33612345678"}, profile={"first_name": "Zoé"}),
    ).json()

    assert outcome["member_id"] == prospect["member_id"]
    member = api.get(f"/members/{prospect['member_id']}").json()
    assert member["status"] == "active"
    assert member["first_name"] == "Zoé"


def test_an_enrolment_event_for_a_new_identity_creates_an_active_member(
    api: Api, database: Database
) -> None:
    at = datetime(2025, 2, 3, 9, 30, tzinfo=UTC)
    payload = enrolment(
        {"card": "4000 1234", "email": "eve@example.com"},
        profile={
            "first_name": "Eve",
            "birth_date": "1985-12-01",
            "postal_code": "75011",
            "attributes": {"vip": True},
        },
        consents=[{"channel": "email", "granted": True}, {"channel": "push", "granted": False}],
        occurred_at=at,
        channel="app",
        store="app-ios",
    )

    outcome = api.post("/events", json=payload).json()

    assert outcome["status"] == "accepted"
    assert outcome["member_created"] is True
    member = api.get(f"/members/{outcome['member_id']}").json()
    assert member["status"] == "active"
    assert member["enrolment_channel"] == "app"
    assert member["enrolment_store"] == "app-ios"
    assert datetime.fromisoformat(member["enrolled_at"]) == at
    assert member["first_name"] == "Eve"
    assert member["birth_date"] == "1985-12-01"
    assert member["attributes"] == {"vip": True}
    assert {(i["kind"], i["value"]) for i in member["identities"]} == {
        ("card", "40001234"),
        ("email", "eve@example.com"),
    }
    consents = {c["channel"]: c for c in member["consents"]}
    assert consents["email"]["granted"] is True
    assert consents["push"]["granted"] is False
    assert consents["email"]["source"] == "event:app"
    assert datetime.fromisoformat(consents["email"]["changed_at"]) == at


def test_a_rejected_enrolment_event_creates_no_member(api: Api, database: Database) -> None:
    payload = enrolment({"email": "x@example.com"}, consents=[{"channel": "fax", "granted": True}])

    body = api.post("/events/batch", json={"events": [payload]}).json()

    assert body["results"][0]["fields"][0]["loc"] == ["properties", "consents", 0, "channel"]
    assert members_of(database, api) == 0
    assert (
        count_rows(database, MemberIdentity, MemberIdentity.programme_id == api.programme.id) == 0
    )


def test_profile_updated_event_changes_the_profile(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory(first_name="Old", attributes={"keep": 1, "drop": 2})

    response = api.post(
        "/events",
        json=profile_updated(
            ref(member), {"first_name": "New", "attributes": {"drop": None, "add": "x"}}
        ),
    )

    assert response.status_code == 201
    updated = api.get(f"/members/{member.id}").json()
    assert updated["first_name"] == "New"
    assert updated["attributes"] == {"keep": 1, "add": "x"}


def test_consent_changed_events_keep_history_and_an_older_change_does_not_win(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    march = datetime(2025, 3, 1, tzinfo=UTC)
    january = datetime(2025, 1, 1, tzinfo=UTC)

    api.post("/events", json=consent_changed(ref(member), "sms", True, occurred_at=march))
    late = api.post("/events", json=consent_changed(ref(member), "sms", False, occurred_at=january))

    assert late.status_code == 201
    (current,) = api.get(f"/members/{member.id}").json()["consents"]
    assert current["granted"] is True
    assert datetime.fromisoformat(current["changed_at"]) == march
    history = api.get(f"/members/{member.id}/consents/history").json()
    assert [(h["granted"], datetime.fromisoformat(h["changed_at"])) for h in history] == [
        (False, january),
        (True, march),
    ]


def test_consent_changes_within_one_batch_apply_in_time_order(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    times = [datetime(2025, 1, d, tzinfo=UTC) for d in (5, 9, 7)]
    batch = [
        consent_changed(ref(member), "email", granted, occurred_at=at)
        for granted, at in zip([True, False, True], times, strict=True)
    ]

    api.post("/events/batch", json={"events": batch})

    (current,) = api.get(f"/members/{member.id}").json()["consents"]
    assert current["granted"] is False
    assert len(api.get(f"/members/{member.id}/consents/history").json()) == 3


def test_a_prospect_created_by_an_event_in_a_batch_is_reused_by_the_next_event(
    api_factory: Callable[[Programme], Api],
    programme_factory: Callable[..., Programme],
    database: Database,
) -> None:
    api = api_factory(programme_factory(settings={"unknown_member": "enrol_prospect"}))
    identity = {"external": {"namespace": "pos", "value": str(uuid.uuid4())}}

    body = api.post(
        "/events/batch",
        json={"events": [purchase(identity), purchase(identity), enrolment(identity)]},
    ).json()

    assert body["accepted"] == 3
    assert len({r["member_id"] for r in body["results"]}) == 1
    assert [r["member_created"] for r in body["results"]] == [True, False, False]
    assert members_of(database, api) == 1
    assert api.get(f"/members/{body['results'][0]['member_id']}").json()["status"] == "active"


def test_a_consent_event_for_an_unknown_identity_enrols_a_prospect_with_that_consent(
    api_factory: Callable[[Programme], Api], programme_factory: Callable[..., Programme]
) -> None:
    api = api_factory(programme_factory(settings={"unknown_member": "enrol_prospect"}))

    response = api.post("/events", json=consent_changed({"email": "nl@example.com"}, "email", True))

    assert response.status_code == 201
    member = api.get(f"/members/{response.json()['member_id']}").json()
    assert member["status"] == "prospect"
    assert [(c["channel"], c["granted"]) for c in member["consents"]] == [("email", True)]
