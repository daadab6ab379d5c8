"""Bulk imports of members and events: reject report, idempotent re-runs, resume after a crash."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.intake import members_import as importer
from fidelia.intake import service as intake
from fidelia.intake.imports import run_import
from fidelia.models import Consent, Event, ImportRun, Member, MemberIdentity, Programme
from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import count_rows

MEMBER_HEADER = [
    "card",
    "email",
    "phone",
    "external_namespace",
    "external_id",
    "first_name",
    "enrolled_at",
    "consent_email",
    "consent_sms",
    "attributes",
]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def counts(database: Database, programme: Programme) -> tuple[int, int]:
    members = count_rows(database, Member, Member.programme_id == programme.id)
    events = count_rows(database, Event, Event.programme_id == programme.id)
    return members, events


def rejects_of(path: Path) -> list[tuple[int, str, str]]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(int(r["line"]), r["error"], r["detail"]) for r in rows]


def test_members_csv_with_a_reject_report(
    database: Database, programme: Programme, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "members.csv",
        MEMBER_HEADER,
        [
            ["C-1", "a@example.com", "06 12 34 56 78", "", "", "Ann", "", "yes", "no", ""],
            ["", "not-an-email", "", "", "", "Bad", "", "", "", ""],  # line 3
            ["C-3", "", "", "shop", "s-3", "Cy", "2024-05-01T10:00:00Z", "", "", '{"vip": 1}'],
            ["", "", "", "", "", "Nobody", "", "", "", ""],  # line 5: no identity
            ["C-5", "", "", "", "", "Maybe", "", "perhaps", "", ""],  # line 6
            ["C-6", "", "", "", "", "Naive", "2024-05-01T10:00:00", "", "", ""],  # line 7
            ["C-7", "", "", "", "", "Json", "", "", "", "{broken"],  # line 8
        ],
    )

    report = run_import(database, programme_id=programme.id, path=path, kind="members")

    assert (report.lines, report.accepted, report.duplicates, report.rejected) == (7, 2, 0, 5)
    rejects = rejects_of(tmp_path / "members.csv.rejects.csv")
    assert [line for line, _, _ in rejects] == [3, 5, 6, 7, 8]
    assert "email" in rejects[0][2]
    assert "consent_email" in rejects[2][2]
    assert "enrolled_at" in rejects[3][2]
    assert count_rows(database, Member, Member.programme_id == programme.id) == 2
    with database.transaction(readonly=True) as session:
        identities = {
            tuple(row)
            for row in session.execute(
                select(MemberIdentity.kind, MemberIdentity.namespace, MemberIdentity.value).where(
                    MemberIdentity.programme_id == programme.id
                )
            )
        }
        consents = {
            (c.channel, c.granted, c.source)
            for c in session.scalars(select(Consent).where(Consent.programme_id == programme.id))
        }
        cy = session.scalar(
            select(Member).where(Member.programme_id == programme.id, Member.first_name == "Cy")
        )
    assert identities == {
        ("card", "", "C-1"),
        ("email", "", "a@example.com"),
        ("phone", "", "+33612345678"),
        ("card", "", "C-3"),
        ("external", "shop", "s-3"),
    }
    assert consents == {("email", True, "import"), ("sms", False, "import")}
    assert cy is not None
    assert cy.attributes == {"vip": 1}
    assert cy.enrolled_at.isoformat() == "2024-05-01T10:00:00+00:00"


def test_members_jsonl_and_a_re_run_creates_nothing_twice(
    database: Database, programme: Programme, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "members.jsonl",
        [
            {"card": "J-1", "first_name": "A", "consents": [{"channel": "push", "granted": True}]},
            {"email": "J2@Example.com", "external_ids": [{"namespace": "app", "value": "2"}]},
            "{not json",
            ["a", "list"],
            {"card": "J-1", "email": "other@example.com"},  # line 5: identity of line 1
            {"card": "J-6", "email": "j2@example.com"},  # line 6: J-6 is new, email is line 2's
            {"card": "J-7", "email": "j2@EXAMPLE.com", "phone": "0611111111"},
            {"card": "J-8", "channel": "carrier-pigeon"},
        ],
    )

    first = run_import(database, programme_id=programme.id, path=path, kind="members")
    second = run_import(database, programme_id=programme.id, path=path, kind="members")

    assert (first.accepted, first.duplicates, first.rejected) == (2, 3, 3)
    assert sorted(r.line for r in first.rejects) == [3, 4, 8]
    assert (second.accepted, second.duplicates, second.rejected) == (0, 5, 3)
    assert count_rows(database, Member, Member.programme_id == programme.id) == 2
    assert count_rows(database, Consent, Consent.programme_id == programme.id) == 1
    assert rejects_of(tmp_path / "members.jsonl.rejects.csv")[0][:2] == (3, "unreadable")


def test_a_member_line_with_identities_of_two_members_is_rejected(
    database: Database, programme: Programme, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [{"card": "K-1"}, {"email": "k2@example.com"}, {"card": "K-1", "email": "k2@example.com"}],
    )

    report = run_import(database, programme_id=programme.id, path=path, kind="members")

    assert [(r.line, r.error) for r in report.rejects] == [(3, "conflict")]


def event_lines(n: int, prefix: str = "e") -> list[dict[str, Any]]:
    return [
        purchase(
            {"external": {"namespace": "shop", "value": f"c{i % 7}"}},
            id=f"{prefix}-{i}",
            order_id=f"{prefix}-order-{i}",
            lines=[line("sku", 1, f"{i}.50")],
        )
        for i in range(n)
    ]


def test_events_jsonl_with_rejects_then_a_re_run_is_all_duplicates(
    database: Database, programme: Programme, tmp_path: Path
) -> None:
    good = event_lines(5)
    bad_total = {**good[0], "id": "bad", "properties": {**good[0]["properties"], "total": "x"}}
    same_order = {**good[1], "id": "other-id"}
    path = write_jsonl(tmp_path / "events.jsonl", [*good, bad_total, "", "{oops", same_order])

    first = run_import(
        database, programme_id=programme.id, path=path, kind="events", enrol_unknown="active"
    )
    second = run_import(
        database, programme_id=programme.id, path=path, kind="events", enrol_unknown="active"
    )

    assert (first.accepted, first.duplicates, first.rejected) == (5, 0, 3)
    assert sorted((r.line, r.error) for r in first.rejects) == [
        (6, "validation_error"),
        (8, "unreadable"),
        (9, "conflict"),
    ]
    assert (second.accepted, second.duplicates, second.rejected) == (0, 5, 3)
    assert counts(database, programme) == (5, 5)
    with database.transaction(readonly=True) as session:
        statuses = set(
            session.scalars(select(Member.status).where(Member.programme_id == programme.id))
        )
    assert statuses == {"active"}


def test_events_import_without_enrolment_rejects_unknown_members(
    database: Database, programme: Programme, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", event_lines(3))

    report = run_import(database, programme_id=programme.id, path=path, kind="events")

    assert {r.error for r in report.rejects} == {"unknown_member"}
    assert counts(database, programme) == (0, 0)


def test_events_csv(database: Database, programme: Programme, tmp_path: Path) -> None:
    header = ["id", "type", "occurred_at", "member_email", "member_card", "channel", "properties"]
    path = write_csv(
        tmp_path / "events.csv",
        header,
        [
            ["v1", "page_view", "2025-01-01T10:00:00Z", "x@example.com", "", "web", '{"url": "/"}'],
            ["v2", "review", "2025-01-02T10:00:00Z", "", "CARD-1", "app", '{"stars": 4}'],
            ["v3", "page_view", "2025-01-03T10:00:00Z", "x@example.com", "", "", "{bad json"],
            ["v4", "page_view", "yesterday", "x@example.com", "", "", "{}"],
            ["v5", "page_view", "2025-01-04T10:00:00Z", "x@example.com", "CARD-1", "", ""],
        ],
    )

    report = run_import(
        database, programme_id=programme.id, path=path, kind="events", enrol_unknown="prospect"
    )

    assert (report.accepted, report.rejected) == (2, 3)
    assert sorted((r.line, r.error) for r in report.rejects) == [
        (4, "unreadable"),
        (5, "validation_error"),
        (6, "conflict"),
    ]
    assert counts(database, programme) == (2, 2)


def crash_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, chunks: int) -> None:
    """Make ``owner.name`` raise after it has processed ``chunks`` chunks (a simulated crash)."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if calls["n"] == chunks:
            raise RuntimeError("simulated crash")
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)


def test_an_events_import_resumes_after_a_crash(
    database: Database, programme: Programme, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[Any] = event_lines(23)
    lines.insert(4, event("Not A Type", {"card": "X"}, id="bad"))  # line 5: rejected
    path = write_jsonl(tmp_path / "events.jsonl", lines)
    args: dict[str, Any] = {
        "programme_id": programme.id,
        "path": path,
        "kind": "events",
        "chunk_size": 5,
    }

    with monkeypatch.context() as patch:
        crash_after(patch, intake, "ingest", chunks=2)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_import(database, **args, enrol_unknown="active")
    assert counts(database, programme)[1] == 9
    report = run_import(database, **args, enrol_unknown="active")

    assert report.resumed_after_line == 10
    assert (report.lines, report.accepted, report.duplicates, report.rejected) == (14, 14, 0, 0)
    assert counts(database, programme) == (7, 23)
    with database.transaction(readonly=True) as session:
        run = session.scalar(select(ImportRun).where(ImportRun.programme_id == programme.id))
    assert run is not None
    assert (run.status, run.lines_done, run.accepted, run.duplicates, run.rejected) == (
        "done",
        24,
        23,
        0,
        1,
    )
    assert [line for line, _, _ in rejects_of(tmp_path / "events.jsonl.rejects.csv")] == [5]


def test_a_members_import_resumes_after_a_crash(
    database: Database, programme: Programme, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(tmp_path / "members.jsonl", [{"card": f"R-{i}"} for i in range(10)])
    args: dict[str, Any] = {
        "programme_id": programme.id,
        "path": path,
        "kind": "members",
        "chunk_size": 3,
    }

    with monkeypatch.context() as patch:
        crash_after(patch, importer, "process_members", chunks=1)
        with pytest.raises(RuntimeError):
            run_import(database, **args)
    assert count_rows(database, Member, Member.programme_id == programme.id) == 3
    report = run_import(database, **args)

    assert (report.resumed_after_line, report.accepted, report.duplicates) == (3, 7, 0)
    assert count_rows(database, Member, Member.programme_id == programme.id) == 10


def test_an_unknown_format_is_refused(
    database: Database, programme: Programme, tmp_path: Path
) -> None:
    path = tmp_path / "events.xml"
    path.write_text("<events/>", encoding="utf-8")

    with pytest.raises(ValueError, match="format"):
        run_import(database, programme_id=programme.id, path=path, kind="events")
