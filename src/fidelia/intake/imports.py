"""Bulk import of events and members from files: idempotent, resumable, with a reject report.

The file is read in chunks; each chunk goes through the same intake as the API and is committed
together with the import's progress (``import_runs``), so a crash resumes after the last
committed chunk, and a re-run creates nothing twice (idempotency keys and identities). Rejected
lines write nothing and are reported with their line number and reason.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fidelia.db import Database
from fidelia.events import cdnow
from fidelia.events.schemas import EventIn, EventOutcome, ExternalId, MemberRef, Purchase
from fidelia.intake import service as intake
from fidelia.kit.bounds import check_instant
from fidelia.kit.built import built
from fidelia.kit.clock import utcnow
from fidelia.kit.records import (
    LineOutcome,
    Record,
    detect_format,
    file_digest,
    read_csv,
    read_jsonl,
)
from fidelia.models import ImportRun, Programme

Progress = Callable[[int, "ImportReport"], None]


@dataclass(frozen=True, slots=True)
class Vouched:
    """An event whose reader settled every check of its validation, properties included: the
    intake takes the properties' stored form and typed model as they are."""

    event: EventIn
    properties: dict[str, Any]
    typed: Any


# a line: its record, an event already checked (CDNOW; its properties too if vouched for), or
# the reason it cannot be read
Parsed = tuple[int, Vouched | EventIn | dict[str, Any] | str]
MEMBER_FIELDS = ("card", "email", "phone")
# the tables the import reads while it grows them, analysed again once they have doubled
ANALYSED = ("events", "members", "member_identities")
GROWTH = 1.0


@dataclass
class Reject:
    line: int
    id: str
    error: str
    detail: str


@dataclass
class ImportReport:
    file: str
    kind: str
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    resumed_after_line: int = 0
    seconds: float = 0.0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def event_from_csv(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as an event payload.

    ``member_*`` columns name the member; ``properties`` holds the properties as JSON.
    """
    event: dict[str, Any] = {
        k: v for k, v in row.items() if not k.startswith("member_") and k != "properties"
    }
    member: dict[str, Any] = {f: row[f"member_{f}"] for f in MEMBER_FIELDS if f"member_{f}" in row}
    if "member_id" in row:
        member["id"] = row["member_id"]
    if "member_external_namespace" in row or "member_external_id" in row:
        member["external"] = {
            "namespace": row.get("member_external_namespace"),
            "value": row.get("member_external_id"),
        }
    event["member"] = member
    event["properties"] = json.loads(row["properties"]) if "properties" in row else {}
    return event


def read_cdnow(path: Path, timezone: str) -> Iterator[Parsed]:
    """The CDNOW purchase log as purchase events of members ``cdnow:<customer id>``.

    A line is checked here and comes as an ``EventIn`` built without a second validation
    (:func:`_checked_cdnow`), and as :class:`Vouched` with its typed purchase when the reader
    vouches for that too (``cdnow.Order.valid``); a line those checks cannot vouch for comes as
    the payload, which the intake validates in full and rejects with the usual error."""
    refs: dict[str, MemberRef] = {}
    instants: dict[datetime, datetime | None] = {}
    for order in cdnow.read(path, ZoneInfo(timezone)):
        if not isinstance(order, cdnow.Order):
            yield order
            continue
        properties = _purchase_json(order.purchase)
        checked = _checked_cdnow(order, properties, refs, instants)
        if checked is not None:
            yield (
                order.line,
                Vouched(checked, properties, order.purchase) if order.valid else checked,
            )
            continue
        yield (
            order.line,
            {
                "id": order.purchase.order_id,
                "type": "purchase",
                "occurred_at": order.occurred_at.isoformat(),
                "member": {"external": {"namespace": "cdnow", "value": order.customer}},
                "channel": "web",
                "properties": properties,
            },
        )


def _purchase_json(purchase: Purchase) -> dict[str, Any]:
    """``purchase.model_dump(mode="json")`` for the one-line purchases of CDNOW, written out
    (the dump was two thirds of reading a line; a test holds the two equal)."""
    line = purchase.lines[0]
    return {
        "order_id": purchase.order_id,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "category": line.category,
                "brand": line.brand,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "discount": str(line.discount),
            }
        ],
        "shipping": str(purchase.shipping),
        "total": str(purchase.total),
        "currency": purchase.currency,
        "payment_means": [],
    }


# Text in a CDNOW event's properties, beyond which the free-JSON size check is left to the
# full validation (far below its 64 KiB; a normal line has under 60 characters)
_CDNOW_TEXT = 2_000


def _checked_cdnow(
    order: cdnow.Order,
    properties: dict[str, Any],
    refs: dict[str, MemberRef],
    instants: dict[datetime, datetime | None],
) -> EventIn | None:
    """The order as the ``EventIn`` that validating its payload gives, when the checks
    validation makes can be settled here: every other field is a constant, an order id
    ``cdnow-<line>`` or a decimal's text (no NUL, no surrounding space, three levels deep). The
    rest (a date outside the sane range, an outsize customer id or amount) is left to the full
    validation, so a rejected line gets the same error either way. ``refs`` and ``instants``
    keep what was built or checked once per customer and per day."""
    if order.occurred_at in instants:
        occurred_at = instants[order.occurred_at]
    else:
        try:
            occurred_at = instants[order.occurred_at] = check_instant(order.occurred_at)
        except ValueError:
            occurred_at = instants[order.occurred_at] = None
    if occurred_at is None:
        return None
    if not 0 < len(order.customer) <= 200 or not order.customer.isascii():
        return None
    line = properties["lines"][0]
    text = len(line["quantity"]) + len(line["unit_price"]) + len(line["discount"])
    if text + len(properties["total"]) > _CDNOW_TEXT:
        return None
    ref = refs.get(order.customer)
    if ref is None:  # one per customer: models are not changed once validated
        external = built(ExternalId, {"namespace": "cdnow", "value": order.customer})
        ref = refs[order.customer] = built(
            MemberRef,
            {"id": None, "card": None, "email": None, "phone": None, "external": external},
            _REF_GIVEN,
        )
    return built(
        EventIn,
        {
            "id": order.purchase.order_id,
            "type": "purchase",
            "occurred_at": occurred_at,
            "member": ref,
            "channel": "web",
            "store": None,
            "properties": properties,
        },
        _CDNOW_GIVEN,
    )


# the fields a CDNOW payload gives (``store`` is left to its default), and its member's
_CDNOW_GIVEN = frozenset({"id", "type", "occurred_at", "member", "channel", "properties"})
_REF_GIVEN = frozenset({"external"})


def records(path: Path, fmt: str, programme: Programme) -> Iterator[Parsed]:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "cdnow":
        return read_cdnow(path, programme.timezone)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        return (_csv_event(n, r) for n, r in read_csv(path))
    raise ValueError(f"unknown format {fmt!r}: csv, jsonl or cdnow")


def _csv_event(number: int, row: dict[str, Any] | str) -> Record:
    if isinstance(row, str):
        return number, row
    try:
        return number, event_from_csv(row)
    except ValueError as exc:  # the properties cell is not JSON
        return number, f"properties: not valid JSON ({exc})"


def _chunks(items: Iterable[Parsed], size: int) -> Iterator[list[Parsed]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _start(
    database: Database, programme_id: uuid.UUID, kind: str, path: Path
) -> tuple[Programme, ImportRun]:
    digest = file_digest(path)
    with database.transaction() as session:
        programme = session.get(Programme, programme_id)
        if programme is None:
            raise LookupError(f"programme {programme_id} does not exist")
        run = session.scalar(
            select(ImportRun).where(
                ImportRun.programme_id == programme_id,
                ImportRun.kind == kind,
                ImportRun.file_digest == digest,
            )
        )
        if run is None:
            run = ImportRun(
                programme_id=programme_id, kind=kind, file_name=path.name, file_digest=digest
            )
            session.add(run)
        elif run.status == "done":  # a deliberate re-run: start over (it will find only duplicates)
            run.lines_done = run.accepted = run.duplicates = run.rejected = 0
            run.status, run.finished_at = "running", None
        session.flush()
        return programme, run


Processor = Callable[[Any, Programme, list[tuple[int, Any]]], list[LineOutcome]]


def _vouched(
    items: list[Vouched | EventIn | dict[str, Any]],
) -> tuple[list[EventIn | dict[str, Any]], dict[int, tuple[dict[str, Any], Any]]]:
    """The chunk's events, and the properties and typed models vouched for, by position."""
    vouched = {n: (i.properties, i.typed) for n, i in enumerate(items) if isinstance(i, Vouched)}
    events = [i.event if isinstance(i, Vouched) else i for i in items]
    return events, vouched


def _parse(items: list[EventIn | dict[str, Any]]) -> list[EventIn | EventOutcome]:
    """Events checked by their reader as they are; payloads validated by the intake's parse
    (a rejected one's outcome keeps its index in the chunk)."""
    parsed: list[EventIn | EventOutcome] = [i for i in items if isinstance(i, EventIn)]
    if len(parsed) == len(items):
        return parsed
    payloads = [(n, i) for n, i in enumerate(items) if not isinstance(i, EventIn)]
    done = dict(zip((n for n, _ in payloads), intake.parse([p for _, p in payloads]), strict=True))
    return [
        item
        if isinstance(item, EventIn)
        else (o if isinstance(o := done[n], EventIn) else o.model_copy(update={"index": n}))
        for n, item in enumerate(items)
    ]


def run_import(
    database: Database,
    *,
    programme_id: uuid.UUID,
    path: Path,
    kind: Literal["events", "members"],
    fmt: str = "auto",
    chunk_size: int = 1000,
    enrol_unknown: Literal["prospect", "active"] | None = None,
    progress: Progress | None = None,
    rejects_path: Path | None = None,
) -> ImportReport:
    """Import a whole file (or what is left of it after a crash) and report on every line."""
    programme, run = _start(database, programme_id, kind, path)
    report = ImportReport(file=str(path), kind=kind, resumed_after_line=run.lines_done)
    process: Processor
    if kind == "events":
        source = records(path, fmt, programme)

        def process(
            session: Any, prog: Programme, lines: list[tuple[int, Any]]
        ) -> list[LineOutcome]:
            events, vouched = _vouched([r for _, r in lines])
            outcomes = intake.ingest(
                session,
                programme=prog,
                events=_parse(events),
                enrol_unknown=enrol_unknown,
                actor="import",
                vouched=vouched,
            )
            return [LineOutcome(o.id, o.status, o.error, o.detail) for o in outcomes]

    else:
        from fidelia.intake.members_import import member_records, process_members

        source = member_records(path, fmt)
        process = process_members
    started = time.perf_counter()
    rejects = rejects_path or path.with_name(path.name + ".rejects.csv")
    with _open_rejects(rejects, run.lines_done) as out:
        for chunk in _chunks(source, chunk_size):
            todo = [(n, r) for n, r in chunk if n > run.lines_done]
            if todo:
                _one_chunk(database, programme, run, todo, process, report, out)
                _refresh_statistics(database)
            report.lines += len(todo)
            report.seconds = time.perf_counter() - started
            if progress is not None:
                progress(len(todo), report)
    with database.transaction() as session:
        row = session.get(ImportRun, run.id, with_for_update=True)
        assert row is not None
        row.status, row.finished_at = "done", utcnow()
    report.seconds = time.perf_counter() - started
    return report


def _refresh_statistics(database: Database) -> None:
    """Let PostgreSQL's planner see how much the import has grown the tables it reads.

    Without it, the idempotency and order lookups keep the plan chosen for a near-empty table
    (scan every event of the programme), and a large import slows down quadratically. Only the
    tables :func:`stale_tables` names are analysed: on an empty database that is after chunks
    1, 2, 4, 8... (each time they have doubled), and an import that adds little to large tables
    analyses nothing (ANALYZE reads a sample of up to 30,000 rows: a second on a large table).
    """
    if database.engine.dialect.name == "postgresql":
        with database.transaction() as session:
            if stale := stale_tables(session):
                session.execute(text(f"ANALYZE {', '.join(stale)}"))


def stale_tables(
    session: Session, tables: tuple[str, ...] = ANALYSED, growth: float = GROWTH
) -> list[str]:
    """The ``tables`` whose planner statistics no longer describe them: never analysed (or
    analysed empty) and holding rows now, or grown by ``growth`` (a fraction) since. The growth
    is the table's pages now against ``pg_class.relpages`` as of its last ANALYZE (the import's
    or autovacuum's), which counted ``reltuples`` rows in them: the rows added since, whoever
    wrote them, against the rows the statistics describe. None on SQLite, whose planner does
    without statistics for these lookups."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    found = session.execute(
        text(
            "SELECT relname, reltuples, relpages,"
            " pg_relation_size(oid) / current_setting('block_size')::int AS pages"
            " FROM pg_class"
            " WHERE oid IN (SELECT to_regclass(t) FROM unnest(CAST(:tables AS text[])) t)"
        ),
        {"tables": list(tables)},
    )
    stats = {name: (rows, before, now) for name, rows, before, now in found}
    stale = []
    for name in tables:
        rows, before, now = stats[name]
        never = rows < 0 or before == 0  # -1: never analysed (PostgreSQL 14+)
        if now > 0 if never else now >= (1 + growth) * before:
            stale.append(name)
    return stale


def _one_chunk(
    database: Database,
    programme: Programme,
    run: ImportRun,
    todo: list[Parsed],
    process: Processor,
    report: ImportReport,
    out: TextIO,
) -> None:
    readable = [(n, r) for n, r in todo if not isinstance(r, str)]
    unreadable = [Reject(n, "", "unreadable", r) for n, r in todo if isinstance(r, str)]
    with database.transaction() as session:
        outcomes = process(session, programme, readable)
        rejects = unreadable + [
            Reject(n, o.id, o.error or "rejected", o.detail or "")
            for (n, _), o in zip(readable, outcomes, strict=True)
            if o.status == "rejected"
        ]
        accepted = sum(o.status == "accepted" for o in outcomes)
        duplicates = sum(o.status == "duplicate" for o in outcomes)
        row = session.get(ImportRun, run.id, with_for_update=True)
        assert row is not None
        row.lines_done = todo[-1][0]
        row.accepted += accepted
        row.duplicates += duplicates
        row.rejected += len(rejects)
        rejects.sort(key=lambda r: r.line)
        # in the report before the chunk commits: a crash leaves them, never loses them, and
        # the resumed run drops the rows of chunks that did not commit (_open_rejects)
        csv.writer(out).writerows([r.line, r.id, r.error, r.detail] for r in rejects)
        out.flush()
    run.lines_done = todo[-1][0]
    report.accepted += accepted
    report.duplicates += duplicates
    report.rejected += len(rejects)
    report.rejects.extend(rejects[: max(0, 1000 - len(report.rejects))])


def _open_rejects(path: Path, lines_done: int) -> TextIO:
    """The reject report, open for writing after its header. A resumed run keeps the rows of
    the lines already committed (``<= lines_done``) and drops what a crash left of the rest:
    rows of a chunk that rolled back, a row cut short."""
    kept: list[list[str]] = []
    if lines_done and path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            try:
                for r in csv.reader(handle):
                    if len(r) == 4 and r[0].isdigit() and int(r[0]) <= lines_done:
                        kept.append(r)
            except csv.Error:  # a quoted field cut short at the end: the rows read are kept
                pass
    out = path.open("w", newline="", encoding="utf-8")
    csv.writer(out).writerows([["line", "id", "error", "detail"], *kept])
    out.flush()
    return out
