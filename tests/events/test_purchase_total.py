"""A purchase's total must agree with its lines: what they cost after discounts, plus shipping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.models import Event, Member
from tests.fixtures.events import line, purchase, ref
from tests.fixtures.factories import Api, count_rows


def events_of(database: Database, api: Api) -> int:
    return count_rows(database, Event, Event.programme_id == api.programme.id)


def with_total(member: Member, total: str, shipping: str = "0") -> dict[str, Any]:
    lines = [line("A", 2, "10.00"), line("B", 1, "5.00", discount="1.00")]
    payload = purchase(ref(member), lines=lines)
    payload["properties"] |= {"total": total, "shipping": shipping}
    return payload


def test_a_total_far_from_its_lines_is_422_naming_the_total_and_writes_nothing(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()

    response = api.post("/events", json=with_total(member, "1000"))

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert [f["loc"] for f in body["fields"]] == [["body", "properties", "total"]]
    assert "24" in body["fields"][0]["msg"]  # says what the lines and shipping come to
    assert events_of(database, api) == 0


def test_in_a_batch_only_the_purchase_with_a_wrong_total_is_rejected(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()

    body = api.post(
        "/events/batch",
        json={"events": [with_total(member, "24.00"), with_total(member, "10")]},
    ).json()

    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert body["results"][1]["fields"][0]["loc"] == ["properties", "total"]
    assert events_of(database, api) == 1


@pytest.mark.parametrize(
    ("total", "shipping", "accepted"),
    [
        ("24.00", "0", True),  # 2 x 10 + (5 - 1)
        ("28.90", "4.90", True),  # shipping counts
        ("24.02", "0", True),  # a cent per line of rounding (two lines)
        ("23.98", "0", True),
        ("24.03", "0", False),
        ("24.00", "4.90", False),  # shipping forgotten in the total
        ("25.00", "0", False),  # the line discount forgotten
    ],
)
def test_the_total_is_the_lines_after_discounts_plus_shipping_within_a_cent_per_line(
    api: Api,
    member_factory: Callable[..., Member],
    total: str,
    shipping: str,
    accepted: bool,
) -> None:
    member = member_factory()

    response = api.post("/events", json=with_total(member, total, shipping))

    assert response.status_code == (201 if accepted else 422), response.text


def test_dry_run_refuses_a_wrong_total_too(api: Api, member_factory: Callable[..., Member]) -> None:
    member = member_factory()

    response = api.post("/events/dry-run", json=with_total(member, "1000"), scope="integration")

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "properties", "total"]
