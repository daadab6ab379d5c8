"""The analytics API: JSON and CSV, scopes, and bad input answered 422 naming the field."""

from __future__ import annotations

import csv
import io

from fidelia.models import Programme
from tests.fixtures.events import enrolment, line, purchase
from tests.fixtures.factories import Api


def _some_sales(api: Api, programme: Programme) -> None:
    joined = api.post(
        "/events",
        json=enrolment({"email": f"x-{programme.slug}@example.com"}, channel="web"),
        scope="integration",
    )
    assert joined.status_code == 201, joined.text
    member = {"id": joined.json()["member_id"]}
    for i, amount in enumerate(("10.00", "30.00")):
        body = purchase(member, order_id=f"m-{i}", lines=[line("a", 1, amount)], store="s1")
        assert api.post("/events", json=body, scope="integration").status_code == 201
    body = purchase({}, order_id="anon", lines=[line("a", 1, "5.00")], store="s1")
    del body["member"]
    assert api.post("/events", json=body, scope="integration").status_code == 201


def test_kpis_as_json_and_as_csv(api: Api, programme: Programme) -> None:
    _some_sales(api, programme)
    query = {"start": "2025-01-01", "end": "2025-12-31", "group_by": "store"}
    answer = api.get("/analytics/kpis", params=query, scope="read")
    assert answer.status_code == 200, answer.text
    headline = answer.json()["headline"]
    assert (headline["member_orders"], headline["non_member_orders"]) == (2, 1)
    assert headline["member_sales"] == "40.00"
    assert headline["basket_member"] == "20.00"
    assert headline["repeat_members"] == 1
    by_store = {g["key"]: g for g in answer.json()["groups"]}
    assert (by_store["s1"]["member_orders"], by_store["s1"]["non_member_orders"]) == (2, 1)
    assert by_store[""]["enrolments"] == 1  # enrolled on the web, no store
    table = api.get("/analytics/kpis", params={**query, "format": "csv"}, scope="read")
    assert table.status_code == 200
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    found = {(r["section"], r["metric"]): r["value"] for r in rows if r["section"] == "headline"}
    assert found[("headline", "member_orders")] == "2"
    assert found[("headline", "non_member_sales")] == "5.00"


def test_cohorts_and_liability_answer_json_and_csv(api: Api, programme: Programme) -> None:
    _some_sales(api, programme)
    cohorts = api.get("/analytics/cohorts", params={"start": "2025-01-01"}, scope="read")
    assert cohorts.status_code == 200, cohorts.text
    assert cohorts.json()["cohorts"][0]["members"] == 1
    table = api.get("/analytics/cohorts", params={"start": "2025-01-01", "format": "csv"})
    assert table.text.splitlines()[0].startswith("cohort,members,repeat_members,m1")
    owed = api.get("/analytics/liability", params={"wallet": "points"}, scope="read")
    assert owed.status_code == 200, owed.text
    assert len(owed.json()["forecast"]) == 12
    table = api.get("/analytics/liability", params={"format": "csv"}, scope="read")
    assert len(table.text.splitlines()) == 13


def test_bad_input_is_a_422_naming_the_field(api: Api) -> None:
    cases = [
        ("/analytics/kpis", {"start": "2025-03-01", "end": "2025-01-01"}, "end"),
        ("/analytics/kpis", {"grain": "year"}, "grain"),
        ("/analytics/kpis", {"group_by": "colour"}, "group_by"),
        ("/analytics/kpis", {"start": "2020-01-01", "end": "2025-01-01"}, "start"),
        ("/analytics/cohorts", {"start": "2025-03-01", "end": "2025-01-01"}, "end"),
        ("/analytics/liability", {"at": "2025-01-01T00:00:00"}, "at"),
    ]
    for path, params, field in cases:
        answer = api.get(path, params=params, scope="read")
        assert answer.status_code == 422, (path, params, answer.text)
        assert answer.json()["fields"][0]["loc"][-1] == field, answer.json()
    assert api.get("/analytics/liability", params={"wallet": "nope"}).status_code == 404
    assert api.get("/analytics/kpis", key=None).status_code == 401
