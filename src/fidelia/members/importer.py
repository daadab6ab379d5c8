"""Bulk import of members (CSV or JSON Lines), used by ``fidelia members import``.

A line whose identities already belong to a member is a duplicate and changes nothing, so a
file can be imported again safely. CSV columns: ``card, email, phone, external_namespace,
external_id, first_name, last_name, birth_date, locale, postal_code, channel, store,
enrolled_at, consent_email, consent_sms, consent_push, consent_postal, attributes`` (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from fidelia.errors import FideliaError
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.records import LineOutcome, Record, detect_format, read_csv, read_jsonl
from fidelia.members import service
from fidelia.members.identities import EXTERNAL
from fidelia.members.schemas import MemberCreate
from fidelia.models import Consent, ConsentChange, Programme

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
    """Create the members of a chunk of lines; each line gets its outcome."""
    parsed: list[tuple[MemberCreate, list[service.IdentityKey]] | LineOutcome] = []
    for _, raw in lines:
        try:
            data = MemberCreate.model_validate(raw)
            keys = service.identity_keys(
                programme,
                card=data.card,
                email=data.email,
                phone=data.phone,
                external=[(x.namespace, x.value) for x in data.external_ids],
            )
            if not keys:
                raise ValueError("a member needs a card, email, phone or external id")
            parsed.append((data, keys))
        except (ValidationError, FideliaError, ValueError) as exc:
            detail = exc.detail if isinstance(exc, FideliaError) else str(exc)
            parsed.append(LineOutcome(_line_id(raw), "rejected", "validation_error", detail))
    owners = service.find_identities(
        session, programme=programme, keys=[k for p in parsed if isinstance(p, tuple) for k in p[1]]
    )
    consents: list[Consent | ConsentChange] = []
    outcomes = [
        p if isinstance(p, LineOutcome) else _create(session, programme, *p, owners, consents)
        for p in parsed
    ]
    # Members first, then their consents: the models have no relationship(), so one flush
    # would insert them in class-name order (consents before members).
    session.flush()
    session.add_all(consents)
    return outcomes


def _create(
    session: Session,
    programme: Programme,
    data: MemberCreate,
    keys: list[service.IdentityKey],
    owners: dict[tuple[str, str, str], Any],
    consents: list[Consent | ConsentChange],
) -> LineOutcome:
    line_id = keys[0].value if keys[0].kind != EXTERNAL else f"{keys[0].namespace}:{keys[0].value}"
    found = {owners[k.triple] for k in keys if k.triple in owners}
    if len(found) == 1:
        return LineOutcome(line_id, "duplicate")
    if found:
        return LineOutcome(line_id, "rejected", "conflict", "identities of different members")
    enrolled_at = data.enrolled_at or utcnow()
    member = service.new_member(programme, data, status="active", enrolled_at=enrolled_at)
    session.add(member)
    session.add_all(service.identity_rows(programme, member.id, keys))
    for consent in data.consents:
        common = {
            "programme_id": programme.id,
            "member_id": member.id,
            "channel": consent.channel,
            "granted": consent.granted,
            "changed_at": enrolled_at,
            "source": consent.source or "import",
        }
        consents.append(Consent(id=uuid7(), **common))
        consents.append(ConsentChange(id=uuid7(), **common))
    for key in keys:
        owners[key.triple] = member.id
    return LineOutcome(line_id, "accepted")
