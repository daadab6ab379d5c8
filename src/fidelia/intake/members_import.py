"""Bulk import of members (CSV or JSON Lines), used by ``fidelia members import``.

Each line is enrolled as through ``POST /members`` (an enrolment event, the programme's rules,
badges and tier), a chunk at a time through the event intake. A line whose identities already
belong to a member is a duplicate and changes nothing, so a file can be imported again safely.
CSV columns: ``card, email, phone, external_namespace, external_id, first_name, last_name,
birth_date, locale, postal_code, channel, store, enrolled_at, consent_email, consent_sms,
consent_push, consent_postal, attributes`` (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from fidelia.errors import FideliaError
from fidelia.events.checks import validation_failed
from fidelia.events.schemas import EventOutcome
from fidelia.intake import enrolment
from fidelia.intake.joining import AlreadyEnrolled
from fidelia.kit.records import LineOutcome, Record, detect_format, read_csv, read_jsonl
from fidelia.members.schemas import MemberCreate
from fidelia.models import Programme

CONSENT_CHANNELS = ("email", "sms", "push", "postal")
TRUE, FALSE = {"1", "true", "yes", "y", "oui"}, {"0", "false", "no", "n", "non"}


def member_from_csv(row: dict[str, Any]) -> dict[str, Any]:
    data = {
        k: v
        for k, v in row.items()
        if not k.startswith(("consent_", "external_")) and k != "attributes"
    }
    if "external_namespace" in row or "external_id" in row:
        data["external_ids"] = [
            {"namespace": row.get("external_namespace"), "value": row.get("external_id")}
        ]
    if "attributes" in row:
        data["attributes"] = json.loads(row["attributes"])
    consents = []
    for channel in CONSENT_CHANNELS:
        cell = str(row.get(f"consent_{channel}", "")).strip().lower()
        if cell in TRUE | FALSE:
            consents.append({"channel": channel, "granted": cell in TRUE})
        elif cell:
            raise ValueError(f"consent_{channel}: {cell!r} is not yes or no")
    data["consents"] = consents
    return data


def member_records(path: Path, fmt: str) -> Iterator[Record]:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "jsonl":
        yield from read_jsonl(path)
        return
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r} for members: csv or jsonl")
    for number, row in read_csv(path):
        if isinstance(row, str):
            yield number, row
            continue
        try:
            yield number, member_from_csv(row)
        except ValueError as exc:
            yield number, str(exc)


def _line_id(data: dict[str, Any]) -> str:
    for name in ("card", "email", "phone"):
        if data.get(name):
            return str(data[name])
    externals = data.get("external_ids") or []
    return (
        str(externals[0].get("value", "")) if externals and isinstance(externals[0], dict) else ""
    )


def process_members(
    session: Session, programme: Programme, lines: list[tuple[int, dict[str, Any]]]
) -> list[LineOutcome]:
    """Enrol the members of a chunk of lines, through the intake in one batch (the same
    enrolment as ``POST /members``: event, rules, badges, tier); each line gets its outcome.
    A line whose identities already belong to a member is a duplicate and changes nothing."""
    requests: list[MemberCreate | FideliaError] = []
    for _, raw in lines:
        try:
            requests.append(MemberCreate.model_validate(raw))
        except ValidationError as exc:
            requests.append(validation_failed(exc, ()))
    outcomes = enrolment.enrol_many(
        session, programme=programme, requests=requests, actor="import", consent_source="import"
    )
    return [_line_outcome(_line_id(raw), o) for (_, raw), o in zip(lines, outcomes, strict=True)]


def _line_outcome(line_id: str, outcome: EventOutcome) -> LineOutcome:
    if outcome.status != "rejected":
        return LineOutcome(line_id, "accepted")
    if outcome.error == AlreadyEnrolled.code:
        return LineOutcome(line_id, "duplicate")
    return LineOutcome(line_id, "rejected", outcome.error, outcome.detail)
