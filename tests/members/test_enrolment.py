"""One enrolment path: ``POST /members`` (and the members import) record an ``enrolment`` event
and run the programme on it, as an ``enrolment`` event sent to ``/events`` does; an enrolment of
a member already enrolled is a profile update that runs no rule."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.intake.imports import run_import
from fidelia.models import Event, Member, MemberIdentity, Programme, Voucher
from fidelia.rules.demo import programme_document
from fidelia.rules.history import file_events, stored_events
from tests.fixtures.events import enrolment, event
from tests.fixtures.factories import Api, count_rows

WELCOME_POINTS: dict[str, Any] = {
    "rules": [
        {
            "id": "welcome",
            "name": "50 points to welcome a member",
            "event_type": "enrolment",
            "award": {"kind": "fixed", "amount": 50},
        }
    ]
}


@pytest.fixture
def demo(
    api_factory: Callable[[Programme], Api], programme_factory: Callable[..., Programme]
) -> Api:
    """A programme running the demo document: a welcome voucher on enrolment, tiers, badges."""
    api = api_factory(programme_factory())
    applied = api.put("/programme/document", json=programme_document())
    assert applied.status_code == 200, applied.text
    return api


def rows(database: Database, api: Api, model: Any) -> int:
    return count_rows(database, model, model.programme_id == api.programme.id)


def vouchers(api: Api, member_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/members/{member_id}/vouchers", scope="read")
    assert response.status_code == 200, response.text
    return list(response.json())


def effect_kinds(outcome: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in outcome["effects"]]


# -- POST /members runs the programme -----------------------------------------------------------


def test_post_members_records_the_enrolment_event_and_answers_what_it_earned(
    demo: Api, database: Database
) -> None:
    response = demo.post(
        "/members", json={"email": "ann@example.com", "first_name": "Ann"}, scope="integration"
    )

    assert response.status_code == 201, response.text
    member = response.json()
    assert member["status"] == "active"
    assert member["first_name"] == "Ann"
    outcome = member["enrolment"]
    assert outcome["status"] == "accepted"
    assert {"voucher_issued", "tier"} <= set(effect_kinds(outcome))
    (tier,) = [e for e in outcome["effects"] if e["kind"] == "tier"]
    assert (tier["from"], tier["reason"]) == (None, "joined")
    (logged,) = demo.get(f"/members/{member['id']}/events", scope="read").json()["items"]
    assert (logged["type"], logged["id"]) == ("enrolment", outcome["event_id"])
    assert logged["idempotency_key"] == outcome["id"]
    (voucher,) = vouchers(demo, member["id"])
    assert voucher["source_id"] == outcome["event_id"]
    history = demo.get(f"/members/{member['id']}/tier/history", scope="read").json()
    assert [h["reason"] for h in history] == ["joined"]


def test_the_enrolment_totals_say_what_it_earned_per_wallet(api: Api, database: Database) -> None:
    assert api.put("/programme/document", json=WELCOME_POINTS).status_code == 200

    member = api.post("/members", json={"card": "W-1"}).json()

    assert member["enrolment"]["totals"] == {"points": 50}
    wallets = api.get(f"/members/{member['id']}/wallets", scope="read").json()
    points = next(w for w in wallets if w["wallet"] == "points")
    assert points["available"] == 50


def test_without_a_programme_the_enrolment_event_is_still_recorded(
    api: Api, database: Database
) -> None:
    member = api.post("/members", json={"card": "N-1"}).json()

    assert member["enrolment"]["effects"] == []
    assert rows(database, api, Event) == 1


def test_a_resend_with_the_same_idempotency_key_answers_the_first_enrolment(
    demo: Api, database: Database
) -> None:
    body = {"email": "bob@example.com", "consents": [{"channel": "email", "granted": True}]}
    headers = {"Idempotency-Key": "signup-bob-1"}

    first = demo.post("/members", json=body, headers=headers)
    again = demo.post("/members", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["enrolment"]["status"] == "duplicate"
    assert again.json()["enrolment"]["event_id"] == first.json()["enrolment"]["event_id"]
    assert first.json()["enrolment"]["id"] == "signup-bob-1"
    assert demo.get("/events/signup-bob-1", scope="read").json()["type"] == "enrolment"
    assert rows(database, demo, Member) == 1
    assert rows(database, demo, Event) == 1
    assert len(vouchers(demo, first.json()["id"])) == 1


def test_the_same_idempotency_key_for_another_request_is_409_naming_the_header(
    demo: Api, database: Database
) -> None:
    headers = {"Idempotency-Key": "signup-1"}
    demo.post("/members", json={"email": "one@example.com"}, headers=headers)

    response = demo.post("/members", json={"email": "two@example.com"}, headers=headers)

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert [f["loc"] for f in response.json()["fields"]] == [["header", "Idempotency-Key"]]
    assert rows(database, demo, Member) == 1
    assert rows(database, demo, Event) == 1


def test_an_idempotency_key_too_long_is_422_naming_the_header(api: Api, database: Database) -> None:
    response = api.post("/members", json={"card": "L-1"}, headers={"Idempotency-Key": "k" * 201})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["header", "Idempotency-Key"]
    assert rows(database, api, Member) == 0


def test_a_resend_without_a_key_is_a_409_on_the_identity_and_enrols_no_one_twice(
    demo: Api, database: Database
) -> None:
    body = {"card": "4000 1234", "email": "cy@example.com"}
    first = demo.post("/members", json=body)

    again = demo.post("/members", json=body)

    assert again.status_code == 409
    assert [f["loc"] for f in again.json()["fields"]] == [["body", "card"], ["body", "email"]]
    assert rows(database, demo, Member) == 1
    assert rows(database, demo, Event) == 1
    assert len(vouchers(demo, first.json()["id"])) == 1


def test_a_member_needs_an_identity_and_a_refusal_writes_nothing(
    api: Api, database: Database
) -> None:
    response = api.post("/members", json={"first_name": "Nobody"})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body"]
    assert "card, email, phone or external id" in response.json()["detail"]
    assert (rows(database, api, Member), rows(database, api, Event)) == (0, 0)


def test_every_external_id_of_the_request_is_linked(api: Api) -> None:
    ids = [{"namespace": "app", "value": "u1"}, {"namespace": "shop", "value": "s1"}]

    member = api.post("/members", json={"external_ids": ids}).json()

    found = api.get("/members/lookup", params={"namespace": "shop", "external_id": "s1"})
    assert found.json()["id"] == member["id"]
    assert {i["namespace"] for i in member["identities"]} == {"app", "shop"}


# -- an enrolment of a member already enrolled is not an enrolment ------------------------------


def test_a_second_enrolment_event_runs_no_rule_and_fills_only_the_gaps(
    demo: Api, database: Database
) -> None:
    member = demo.post(
        "/members", json={"email": "dee@example.com", "first_name": "Dee", "attributes": {"a": 1}}
    ).json()
    enrolled_at = member["enrolled_at"]

    response = demo.post(
        "/events",
        json=enrolment(
            {"email": "DEE@example.com", "card": "NEW-CARD"},
            profile={"first_name": "Other", "last_name": "Lee", "attributes": {"a": 2, "b": 3}},
            consents=[{"channel": "sms", "granted": True}],
            channel="web",
        ),
    )

    assert response.status_code == 201
    outcome = response.json()
    assert outcome["already_enrolled"] is True
    assert outcome["member_created"] is False
    assert (outcome["effects"], outcome["totals"]) == ([], {})
    after = demo.get(f"/members/{member['id']}").json()
    assert (after["first_name"], after["last_name"]) == ("Dee", "Lee")
    assert after["attributes"] == {"a": 1, "b": 3}
    assert after["enrolled_at"] == enrolled_at
    assert {(i["kind"], i["value"]) for i in after["identities"]} >= {("card", "NEW-CARD")}
    assert [(c["channel"], c["granted"]) for c in after["consents"]] == [("sms", True)]
    assert len(vouchers(demo, member["id"])) == 1  # the welcome voucher once only
    history = demo.get(f"/members/{member['id']}/tier/history", scope="read").json()
    assert len(history) == 1


def test_a_dry_run_of_an_enrolment_of_an_enrolled_member_earns_nothing(demo: Api) -> None:
    member = demo.post("/members", json={"card": "DRY"}).json()

    dry = demo.post("/events/dry-run", json=enrolment({"card": "DRY"}), scope="integration")
    new = demo.post("/events/dry-run", json=enrolment({"card": "NEW"}), scope="integration")

    assert dry.status_code == 200
    assert (dry.json()["member_id"], dry.json()["effects"]) == (member["id"], [])
    assert new.json()["effects"] != []


def test_an_enrolment_activates_a_prospect_and_runs_the_rules(
    demo: Api, database: Database
) -> None:
    policy = {"settings": {"unknown_member": "enrol_prospect"}}
    assert demo.patch("/programme", json=policy).status_code == 200
    prospect = demo.post("/events", json=event("page_view", {"phone": "0612345678"})).json()

    batch = demo.post("/events/batch", json={"events": [enrolment({"phone": "+33612345678"})]})
    (outcome,) = batch.json()["results"]

    assert outcome["member_id"] == prospect["member_id"]
    assert outcome["already_enrolled"] is False
    assert "voucher_issued" in effect_kinds(outcome)
    history = demo.get(f"/members/{prospect['member_id']}/status/history", scope="read").json()
    assert [(h["from_status"], h["to_status"], h["reason"]) for h in history] == [
        (None, "prospect", "first event (page_view)"),
        ("prospect", "active", "enrolment"),
    ]
    assert history[1]["event_id"] == outcome["event_id"]
    assert history[1]["actor"].startswith("api_key:")


def test_in_one_batch_the_second_enrolment_of_a_new_identity_is_already_enrolled(
    demo: Api, database: Database
) -> None:
    first, second = enrolment({"card": "B-1"}), enrolment({"card": "B-1"}, channel="web")

    body = demo.post("/events/batch", json={"events": [first, second]}).json()

    results = body["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    assert [r["already_enrolled"] for r in results] == [False, True]
    assert [r["member_created"] for r in results] == [True, False]
    assert len(vouchers(demo, results[0]["member_id"])) == 1


def test_an_enrolment_event_links_its_further_external_ids_and_refuses_taken_ones(
    api: Api, database: Database
) -> None:
    other = api.post("/members", json={"external_ids": [{"namespace": "shop", "value": "taken"}]})
    assert other.status_code == 201
    extra = {"external_ids": [{"namespace": "shop", "value": "s-9"}]}
    payload = enrolment({"external": {"namespace": "app", "value": "a-9"}})
    payload["properties"] |= extra

    created = api.post("/events", json=payload).json()
    taken = enrolment({"card": "T-1"})
    taken["properties"]["external_ids"] = [{"namespace": "shop", "value": "taken"}]
    refused = api.post("/events", json=taken)

    found = api.get("/members/lookup", params={"namespace": "shop", "external_id": "s-9"})
    assert found.json()["id"] == created["member_id"]
    assert refused.status_code == 409
    assert refused.json()["fields"][0]["loc"] == ["body", "properties", "external_ids", 0]
    assert rows(database, api, Member) == 2
    card = MemberIdentity.value == "T-1"
    assert (
        count_rows(database, MemberIdentity, MemberIdentity.programme_id == api.programme.id, card)
        == 0
    )


# -- the members import goes the same way -------------------------------------------------------


def test_the_members_import_enrols_each_new_member_through_the_programme(
    demo: Api, database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "members.jsonl"
    path.write_text(
        '{"card": "I-1", "first_name": "A"}\n{"card": "I-2"}\n{"card": "I-1", "email": "x@y.fr"}\n',
        encoding="utf-8",
    )
    programme_id = demo.programme.id

    first = run_import(database, programme_id=programme_id, path=path, kind="members")
    again = run_import(database, programme_id=programme_id, path=path, kind="members")

    assert (first.accepted, first.duplicates, first.rejected) == (2, 1, 0)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert rows(database, demo, Member) == 2
    assert rows(database, demo, Event) == 2  # one enrolment event per member
    assert rows(database, demo, Voucher) == 2  # one welcome voucher each
    member = demo.get("/members/lookup", params={"card": "I-1"}).json()
    (change,) = demo.get(f"/members/{member['id']}/status/history").json()
    assert (change["to_status"], change["actor"]) == ("active", "import")
    assert uuid.UUID(change["event_id"])


# -- back-tests replay enrolments as intake applied them ----------------------------------------


def test_back_tests_leave_out_the_enrolments_of_members_already_enrolled(
    demo: Api, database: Database, tmp_path: Path
) -> None:
    demo.post("/members", json={"email": "bt@example.com"})
    demo.post("/events", json=enrolment({"email": "bt@example.com"}))
    path = tmp_path / "events.jsonl"
    twice = [enrolment({"email": "f@example.com"}), enrolment({"email": "F@example.com"})]
    path.write_text("".join(json.dumps(e) + "\n" for e in twice), encoding="utf-8")

    with database.transaction(readonly=True) as session:
        stored = list(stored_events(session, programme=demo.programme))
    from_file = list(file_events(path))

    assert [e.type for _, e in stored] == ["enrolment"]
    assert [e.type for _, e in from_file] == ["enrolment"]


def test_an_import_can_keep_the_welcome_rule_to_new_members_by_its_channel(
    api: Api, database: Database, tmp_path: Path
) -> None:
    rule = {
        **WELCOME_POINTS["rules"][0],
        "when": {"field": "event.channel", "op": "ne", "value": "import"},
    }
    assert api.put("/programme/document", json={"rules": [rule]}).status_code == 200
    path = tmp_path / "legacy.jsonl"
    path.write_text('{"card": "L-1", "channel": "import"}\n', encoding="utf-8")

    run_import(database, programme_id=api.programme.id, path=path, kind="members")
    joined = api.post("/members", json={"card": "N-1", "channel": "web"}).json()

    legacy = api.get("/members/lookup", params={"card": "L-1"}).json()
    (event,) = api.get(f"/members/{legacy['id']}/events").json()["items"]
    assert event["type"] == "enrolment"
    wallets = api.get(f"/members/{legacy['id']}/wallets").json()
    assert all(Decimal(str(w["available"])) == 0 for w in wallets)  # no welcome points
    assert joined["enrolment"]["totals"] == {"points": 50}
