"""The CDNOW reader's checked events: the same events, fingerprints and rejects as validating
the payloads in full (issue 18: the import no longer validates each CDNOW line twice)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fidelia.db import Database
from fidelia.events import cdnow
from fidelia.events.checks import typed_properties
from fidelia.events.schemas import EventIn
from fidelia.intake import service as intake
from fidelia.intake.imports import Vouched, read_cdnow, run_import
from fidelia.models import Event, Programme
from tests.fixtures.factories import count_rows

TZ = "America/New_York"
CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow_master.txt"
LINES = [
    "00001 19970101 1 11.77",
    "00002 19970102 3 10.00",  # an inexact unit price: rounded up, the rest a discount
    "00003 19970103 0 0.00",
    "00001 19970212 2 29.33",
    "00004 25000101 1 5.00",  # outside the sane range of instants
    "00005 19970105 1 1" + "0" * 2500,  # an outsize amount: priced, refused by validation
    "00006 19970106 1 1.23456",  # more decimals than money has
    "0000" + "7" * 250 + " 19970107 1 5.00",  # a customer id too long for an external id
]


def full_payload(order: cdnow.Order) -> dict[str, Any]:
    """The payload as the reader built it before: validated in full by the intake."""
    return {
        "id": order.purchase.order_id,
        "type": "purchase",
        "occurred_at": order.occurred_at.isoformat(),
        "member": {"external": {"namespace": "cdnow", "value": order.customer}},
        "channel": "web",
        "properties": order.purchase.model_dump(mode="json"),
    }


def check_same(path: Path) -> tuple[int, int, int]:
    """Every line read as validating its payload in full gives, and its purchase as the
    intake's check of the properties gives when the reader vouches for it; counts checked,
    left and vouched for."""
    orders = [o for o in cdnow.read(path, ZoneInfo(TZ)) if isinstance(o, cdnow.Order)]
    read = [r for _, r in read_cdnow(path, TZ)]
    assert len(read) == len(orders)
    checked = left = vouched = 0
    for order, item in zip(orders, read, strict=True):
        payload = full_payload(order)
        (validated,) = intake.parse([payload])
        if isinstance(item, Vouched):
            vouched += 1
            assert isinstance(validated, EventIn)
            properties, typed = typed_properties("purchase", validated.properties, {})
            assert item.properties == properties
            assert item.properties is item.event.properties
            assert item.typed == typed
            assert item.typed.model_fields_set == typed.model_fields_set
            item = item.event
        if isinstance(item, EventIn):
            checked += 1
            assert isinstance(validated, EventIn)
            assert item == validated
            assert item.model_fields_set == validated.model_fields_set
            assert item.ref.model_fields_set == validated.ref.model_fields_set
            assert item.ref.model_dump(exclude_unset=True) == validated.ref.model_dump(
                exclude_unset=True
            )
            assert intake.fingerprint(item) == intake.fingerprint(validated)
        else:
            left += 1
            assert item == payload  # the full validation decides
    return checked, left, vouched


def test_checked_events_equal_the_validated_payloads(tmp_path: Path) -> None:
    path = tmp_path / "cdnow.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="ascii")
    checked, left, vouched = check_same(path)
    # the year 2500, the outsize amount and the long customer id are left to the validation
    # (too many decimals pass the envelope: the purchase's own check refuses them, and the
    # reader does not vouch for that purchase)
    assert (checked, left, vouched) == (5, 3, 4)


def test_an_amount_beyond_the_decimal_context_is_an_unreadable_line(tmp_path: Path) -> None:
    path = tmp_path / "cdnow.txt"
    path.write_text("00001 19970101 1 11.77\n00002 19970101 1 " + "9" * 3000 + "\n")
    read = list(read_cdnow(path, TZ))
    assert isinstance(read[0][1], Vouched)
    assert read[1][0] == 2
    assert isinstance(read[1][1], str)
    assert read[1][1].startswith("unreadable line")


@pytest.mark.skipif(not CDNOW.exists(), reason="the shared CDNOW file is not there")
def test_checked_events_of_the_real_log(tmp_path: Path) -> None:
    path = tmp_path / "first.txt"
    with CDNOW.open(encoding="ascii") as source:
        path.write_text("".join(next(source) for _ in range(3000)), encoding="ascii")
    checked, left, vouched = check_same(path)
    assert (checked > 2900, left, vouched) == (True, 0, checked)


def test_the_import_rejects_what_the_full_validation_rejects(
    database: Database, programme_factory: Any, tmp_path: Path
) -> None:
    programme: Programme = programme_factory(currency="USD", timezone=TZ)
    path = tmp_path / "cdnow.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="ascii")
    rejects = tmp_path / "rejects.csv"

    report = run_import(
        database,
        programme_id=programme.id,
        path=path,
        kind="events",
        fmt="cdnow",
        enrol_unknown="active",
        rejects_path=rejects,
    )

    # what the intake answered for the same payloads before: each validated in full
    other: Programme = programme_factory(currency="USD", timezone=TZ)
    orders = [o for o in cdnow.read(path, ZoneInfo(TZ)) if isinstance(o, cdnow.Order)]
    with database.transaction() as session:
        before = intake.ingest_payloads(
            session,
            programme=other,
            payloads=[full_payload(o) for o in orders],
            enrol_unknown="active",
        )
    expected = {
        o.line: (outcome.error, outcome.detail)
        for o, outcome in zip(orders, before, strict=True)
        if outcome.status == "rejected"
    }
    assert set(expected) == {5, 6, 7, 8}
    with rejects.open(encoding="utf-8") as handle:
        found = {int(r["line"]): (r["error"], r["detail"]) for r in csv.DictReader(handle)}
    assert found == expected
    assert (report.accepted, report.rejected) == (4, 4)
    assert count_rows(database, Event, Event.programme_id == programme.id) == 4
