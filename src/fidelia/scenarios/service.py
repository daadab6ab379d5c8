"""Scenarios: the live section, holdout assignment, the context conditions read, and the
checks of a document's scenarios against its other sections.

Holdout is decided once, at entry, from a hash of the scenario code and the member id (so a
member is in the same arm of a scenario every time, and any process decides the same), and
recorded on the journey. A programme-wide control group (``control_percent``) is the same
hash over the programme and the member: its members are holdout in every scenario.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.errors import ValidationFailed
from fidelia.kit.conditions import compile_condition, condition_fields
from fidelia.models import Member, Programme, SegmentMember
from fidelia.scenarios.schemas import Action, Branch, Scenario, ScenariosSection, check_section
from fidelia.traits import service as traits_service


def section_for(session: Session, programme: Programme) -> ScenariosSection | None:
    """The live document's ``scenarios`` section (cached per immutable version)."""
    return versions.section(session, programme, "scenarios", _parse)


def _parse(raw: Mapping[str, Any]) -> ScenariosSection | None:
    found = raw.get("scenarios")
    return ScenariosSection.model_validate(found) if found else None


def bucket(*parts: str) -> float:
    """A deterministic number in [0, 100) from ``parts``."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1_000_000 / 10_000


def is_holdout(
    section: ScenariosSection, scenario: Scenario, programme_id: uuid.UUID, member_id: uuid.UUID
) -> bool:
    if section.control_percent and bucket("control", str(programme_id), str(member_id)) < (
        section.control_percent
    ):
        return True
    return bucket("holdout", scenario.code, str(member_id)) < scenario.holdout_percent


def member_context(member: Member) -> dict[str, Any]:
    return {
        "id": str(member.id),
        "status": member.status,
        "first_name": member.first_name,
        "locale": member.locale,
        "postal_code": member.postal_code,
        "birth_date": member.birth_date,
        "enrolled_at": member.enrolled_at,
        "attributes": dict(member.attributes or {}),
    }


def names_read(scenario: Scenario) -> frozenset[str]:
    """The roots (and ``member.segments``) the scenario's conditions read."""
    found: set[str] = set()
    conds = [scenario.audience] + [s.condition for s in scenario.steps if isinstance(s, Branch)]
    for cond in conds:
        if cond is not None:
            for _, name in condition_fields(cond):
                found.add("member.segments" if name == "member.segments" else name.split(".")[0])
    return frozenset(found)


def context(
    session: Session,
    programme: Programme,
    member: Member,
    event: dict[str, Any],
    names: frozenset[str],
    now: datetime,
) -> dict[str, Any]:
    """What a scenario's conditions read for one member: ``member.*`` (with ``segments``
    when named), ``traits.*`` (when named) and ``event.*`` (the entry event)."""
    ctx: dict[str, Any] = {"member": member_context(member), "event": event}
    if "member.segments" in names:
        ctx["member"]["segments"] = list(
            session.scalars(
                select(SegmentMember.segment).where(SegmentMember.member_id == member.id)
            )
        )
    if "traits" in names:
        row = traits_service.traits_row(session, member_id=member.id)
        section = traits_service.section_for(session, programme).section
        ctx["traits"] = traits_service.context_for(row, now=now, section=section) if row else {}
    return ctx


def holds(condition: Any, ctx: dict[str, Any], tz: Any) -> bool:
    return condition is None or bool(compile_condition(condition, tz=tz)(ctx))


def check_document(document: dict[str, Any], section: ScenariosSection | None) -> None:
    """A document's scenarios against its other sections: templates and channels of the
    messaging section, segments, badges, wallets, voucher pools (422 with the path)."""
    if section is None:
        return
    check_section(section)
    messaging = document.get("messaging") or {}
    templates = {t["code"] for t in messaging.get("templates", [])}
    channels = set((messaging.get("channels") or {}).keys())
    segments = {s["code"] for s in (document.get("segments") or {}).get("definitions", [])}
    badges = {b["code"] for b in document.get("badges", [])}
    wallets = {w["code"] for w in document.get("wallets", [])}
    pools = {p["code"] for p in document.get("voucher_pools", [])}
    pools |= {r["code"] for r in document.get("rewards", []) if r.get("kind") == "voucher"}
    for i, scenario in enumerate(section.definitions):
        loc: tuple[str | int, ...] = ("scenarios", "definitions", i)
        entry_segment = getattr(scenario.entry, "segment", None)
        if entry_segment is not None and entry_segment not in segments:
            raise ValidationFailed.on((*loc, "entry", "segment"), "declare it in segments")
        for j, step in enumerate(scenario.steps):
            if not isinstance(step, Action):
                continue
            here = (*loc, "steps", j, "do")
            do = step.do
            if do.type in ("message", "webhook") and do.template not in templates:
                raise ValidationFailed.on((*here, "template"), "no such template in messaging")
            if do.type == "message":
                for k, channel in enumerate(do.channels):
                    if channel not in channels:
                        raise ValidationFailed.on(
                            (*here, "channels", k), f"channel {channel!r} is not configured"
                        )
                if not do.channels and not messaging.get("fallback"):
                    raise ValidationFailed.on((*here, "channels"), "give channels: no fallback")
            if do.type == "webhook" and "webhook" not in channels:
                raise ValidationFailed.on(
                    (*here, "template"), "the webhook channel is not configured"
                )
            if do.type == "badge" and do.badge not in badges:
                raise ValidationFailed.on((*here, "badge"), "declare it in badges")
            if do.type == "award" and do.wallet not in wallets:
                raise ValidationFailed.on((*here, "wallet"), "no wallet with this code")
            if do.type == "voucher" and do.pool not in pools:
                raise ValidationFailed.on((*here, "pool"), "no voucher pool with this code")
