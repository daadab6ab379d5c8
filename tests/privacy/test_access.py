"""Right of access: ``GET /members/{id}/export`` and ``privacy.export_member`` return everything
held about the member, and nothing about anyone else."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fidelia.db import Database
from fidelia.models import Programme
from fidelia.privacy import export_member
from tests.fixtures.factories import Api
from tests.privacy.conftest import buy, consent, enrol


def test_export_holds_profile_identities_consents_events_ledger_and_vouchers(demo: Api) -> None:
    member_id = enrol(demo, "ann@example.com", postal_code="75011")
    other_id = enrol(demo, "bob@example.com")
    buy(demo, member_id, "order-1", "40.00")
    buy(demo, other_id, "order-2", "15.00")
    consent(demo, member_id, "email", True, "shop-form")
    consent(demo, member_id, "email", False, "unsubscribe-link")

    response = demo.get(f"/members/{member_id}/export", scope="read")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "fidelia.member-export/1"
    assert body["member"]["first_name"] == "Ann"
    assert body["member"]["postal_code"] == "75011"
    data = body["data"]
    assert [i["value"] for i in data["member_identities"]] == ["ann@example.com"]
    assert [(c["granted"], c["source"]) for c in data["consent_changes"]] == [
        (True, "shop-form"),
        (False, "unsubscribe-link"),
    ]
    assert [c["granted"] for c in data["consents"]] == [False]
    assert sorted(e["type"] for e in data["events"]) == ["enrolment", "purchase"]
    assert {e["reference"] for e in data["events"]} == {None, "order-1"}
    accounts = data["ledger_accounts"]
    assert accounts
    assert all(a["member_id"] == member_id for a in accounts)
    assert sum(a["lifetime_earned"] for a in accounts) >= 40
    assert data["ledger_transactions"], "the purchase's award is a transaction"
    # both legs of each of the member's transactions
    txn_ids = {t["id"] for t in data["ledger_transactions"]}
    assert data["ledger_entries"]
    assert {e["transaction_id"] for e in data["ledger_entries"]} <= txn_ids
    assert data["vouchers"], "the demo programme gives a welcome voucher"
    assert data["member_tiers"]
    assert data["member_status_changes"]
    # nothing of the other member
    flat = response.text
    assert other_id not in flat
    assert "bob@example.com" not in flat
    assert "order-2" not in flat


def test_export_leaves_secrets_out(demo: Api) -> None:
    member_id = enrol(demo, "cid@example.com")

    body = demo.get(f"/members/{member_id}/export", scope="read").json()

    columns = {c for rows in body["data"].values() for row in rows for c in row}
    assert not {c for c in columns if "digest" in c or "secret" in c or "token" in c}


def test_export_of_an_unknown_member_is_404(demo: Api) -> None:
    response = demo.get(f"/members/{uuid.uuid4()}/export", scope="read")

    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"] or "member" in response.text


def test_export_of_another_programmes_member_is_404(
    demo: Api,
    api_factory: Callable[[Programme], Api],
    programme_factory: Callable[..., Programme],
) -> None:
    member_id = enrol(demo, "dee@example.com")
    other = api_factory(programme_factory())

    assert other.get(f"/members/{member_id}/export", scope="read").status_code == 404


def test_export_member_service_for_the_portal(demo: Api, database: Database) -> None:
    member_id = enrol(demo, "eve@example.com")

    with database.transaction(readonly=True) as session:
        body = export_member(session, programme=demo.programme, member_id=uuid.UUID(member_id))

    assert body["member"]["id"] == member_id
    assert body["data"]["member_identities"][0]["value"] == "eve@example.com"
