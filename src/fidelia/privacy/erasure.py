"""Right to erasure: a member's personal data is erased or pseudonymised everywhere it is
stored, and the rest (ledger, counts, KPIs) is left exactly as it was.

- The member row stays (counts, ledger accounts and KPIs point at it); its profile fields are
  emptied and the member is closed.
- Identities are deleted: the old card, email or phone no longer find anyone, and the person
  may enrol again as a new member.
- The event log and the consent history are append-only; the database triggers allow one
  change to them (migration 0014): their personal column (``events.properties``,
  ``consent_changes.source``) may be rewritten for a member who has a ``member_erasures`` row,
  which this module writes first. Personal event properties are those of the built-in types
  (an enrolment's profile and extra external ids, consent sources) and those a custom event
  type's JSON schema marks ``"x-personal": true``.
- Every other table holding the member's rows is scrubbed by column name: personal text
  columns (names, addresses, message bodies...) emptied, personal keys inside JSON columns
  nulled, sign-in codes and sessions deleted. A table that refuses the change (another
  append-only table) is left as it is and named in the result.
- The erasure itself is recorded: when, by whom and why; never what.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Column,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fidelia.audit import service as audit
from fidelia.errors import Conflict
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.models import (
    Consent,
    ConsentChange,
    Event,
    EventType,
    Member,
    MemberErasure,
    MemberIdentity,
    Programme,
)
from fidelia.models.audit import AuditEntry
from fidelia.privacy.access import member_tables

ERASED = "erased"
PROFILE_FIELDS = ("first_name", "last_name", "birth_date", "locale", "postal_code")
# Columns emptied wherever they hold a member's row; keys nulled inside JSON columns.
PERSONAL_COLUMNS = frozenset(
    {
        "first_name", "last_name", "birth_date", "postal_code", "email", "phone", "card",
        "address", "recipient", "subject", "body_text", "body_html", "display_name", "detail",
    }
)  # fmt: skip
PERSONAL_KEYS = PERSONAL_COLUMNS | {"profile", "identities", "external_ids", "attributes"}
# Credentials of the member (portal sign-in): deleted.
DELETED_TABLES = ("portal_codes", "portal_sessions")
# Handled above, or never holding personal data (the ledger is immutable and has none).
SKIPPED_TABLES = frozenset(
    {
        "members", "member_identities", "consents", "consent_changes", "events",
        "member_erasures", "member_status_changes", "ledger_accounts", "ledger_transactions",
    }
)  # fmt: skip


@dataclass
class Erasure:
    record: MemberErasure
    already: bool
    events_rewritten: int = 0
    tables_scrubbed: list[str] = field(default_factory=list)
    tables_refused: list[str] = field(default_factory=list)


def erase_member(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    actor: str,
    reason: str = "request",
    at: datetime | None = None,
) -> Erasure:
    """Erase the member's personal data (see the module's docstring). 404 for a member not in
    the programme; 409 for a merged duplicate (its rows are the survivor's: erase the
    survivor). Erasing again scrubs again and keeps the first record."""
    member = members.get_for_update(session, programme=programme, member_id=member_id)
    if member.status == "merged":
        raise Conflict(
            f"member {member_id} is merged into another: erase the member it was merged into"
        )
    now = at or utcnow()
    record = session.scalar(select(MemberErasure).where(MemberErasure.member_id == member.id))
    already = record is not None
    if record is None:
        record = MemberErasure(
            programme_id=programme.id, member_id=member.id, erased_at=now, actor=actor,
            reason=reason,
        )  # fmt: skip
        session.add(record)
        session.flush()  # the triggers read it
    if member.status != "closed":
        members.set_status(
            session, member=member, status="closed", actor=actor, reason="erasure", at=now
        )
    for name in PROFILE_FIELDS:
        setattr(member, name, None)
    member.attributes = {}
    identities = list(
        session.scalars(select(MemberIdentity.value).where(MemberIdentity.member_id == member.id))
    )
    session.execute(delete(MemberIdentity).where(MemberIdentity.member_id == member.id))
    session.execute(update(Consent).where(Consent.member_id == member.id).values(source=ERASED))
    session.execute(
        update(ConsentChange).where(ConsentChange.member_id == member.id).values(source=ERASED)
    )
    result = Erasure(record=record, already=already)
    result.events_rewritten = _rewrite_events(session, programme=programme, member=member)
    _scrub_tables(session, member=member, result=result)
    _scrub_audit(session, programme=programme, member=member, identities=identities)
    if not already:
        audit.record(
            session, programme_id=programme.id, actor=actor, action="member.erase",
            target_type="member", target_id=str(member.id), reason=reason, at=now,
        )  # fmt: skip
    session.flush()
    return result


# -- the event log -----------------------------------------------------------------------------


def personal_paths(schema: dict[str, Any]) -> list[tuple[str, ...]]:
    """Paths of the properties a JSON schema marks ``"x-personal": true`` (``"*"`` stands for
    every item of an array)."""
    found: list[tuple[str, ...]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        if node.get("x-personal") is True and path:
            found.append(path)
            return
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, (*path, str(name)))
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*path, "*"))

    walk(schema, ())
    return found


BUILT_IN_PATHS: dict[str, list[tuple[str, ...]]] = {
    "enrolment": [("profile",), ("consents", "*", "source"), ("external_ids",)],
    "profile_updated": [("profile",)],
    "consent_changed": [("source",)],
}


def erase_paths(properties: Any, paths: list[tuple[str, ...]]) -> Any:
    """A copy of ``properties`` with the value at each path replaced: objects and lists by an
    empty one, anything else by ``"erased"``."""

    def at(node: Any, path: tuple[str, ...]) -> Any:
        if not path:
            if isinstance(node, dict):
                return {}
            if isinstance(node, list):
                return []
            return None if node is None else ERASED
        head, rest = path[0], path[1:]
        if head == "*" and isinstance(node, list):
            return [at(item, rest) for item in node]
        if isinstance(node, dict) and head in node:
            return {**node, head: at(node[head], rest)}
        return node

    for path in paths:
        properties = at(properties, path)
    return properties


def _rewrite_events(session: Session, *, programme: Programme, member: Member) -> int:
    paths = dict(BUILT_IN_PATHS)
    for name, schema in session.execute(
        select(EventType.name, EventType.json_schema).where(EventType.programme_id == programme.id)
    ):
        found = personal_paths(schema)
        if found:
            paths[name] = found
    rows = session.execute(
        select(Event.id, Event.type, Event.properties).where(
            Event.member_id == member.id, Event.type.in_(list(paths))
        )
    ).all()
    changed = []
    for event_id, kind, properties in rows:
        erased = erase_paths(properties, paths[kind])
        if erased != properties:
            changed.append({"event_id": event_id, "properties": erased})
    table = cast(Table, Event.__table__)
    if changed:
        session.execute(
            update(table).where(table.c.id == bindparam("event_id")),
            changed,
            execution_options={"synchronize_session": False},
        )
    return len(changed)


# -- everything else -----------------------------------------------------------------------------


def scrub(value: Any) -> Any:
    """A copy of a JSON value with the values under personal keys nulled, at any depth."""
    if isinstance(value, dict):
        return {k: None if k in PERSONAL_KEYS else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _scrub_tables(session: Session, *, member: Member, result: Erasure) -> None:
    existing = set(inspect(session.connection()).get_table_names())
    for table, columns in member_tables().items():
        if table.name in SKIPPED_TABLES or table.name not in existing:
            continue
        where = [c == member.id for c in columns]
        try:
            with session.begin_nested():
                if table.name in DELETED_TABLES:
                    session.execute(delete(table).where(*where))
                    result.tables_scrubbed.append(table.name)
                elif _scrub_rows(session, table, where):
                    result.tables_scrubbed.append(table.name)
        except DBAPIError:
            result.tables_refused.append(table.name)


def _scrub_audit(
    session: Session, *, programme: Programme, member: Member, identities: list[str]
) -> None:
    """Audit entries about the member (by target, or holding one of their identities, as the
    entry of the call that enrolled them does) keep who did what and when, not the personal
    values."""
    about = [
        and_(AuditEntry.target_type.in_(("member", "members")),
             AuditEntry.target_id == str(member.id)),
        *(sql_cast(AuditEntry.after, Text).contains(v, autoescape=True) for v in identities),
        *(sql_cast(AuditEntry.before, Text).contains(v, autoescape=True) for v in identities),
    ]  # fmt: skip
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.programme_id == programme.id, or_(*about))
    )
    for entry in entries:
        before, after = scrub(entry.before), scrub(entry.after)
        if before != entry.before or after != entry.after:
            entry.before, entry.after = before, after


def _scrub_rows(session: Session, table: Table, where: list[Any]) -> bool:
    texts = [c for c in table.columns if c.name in PERSONAL_COLUMNS and _is_text(c)]
    jsons = [c for c in table.columns if isinstance(c.type, JSON)]
    if not texts and not jsons:
        return False
    pk = list(table.primary_key.columns)
    touched = False
    for row in session.execute(select(*pk, *texts, *jsons).where(*where)).mappings():
        values: dict[str, Any] = {}
        for col in texts:
            if row[col] is not None:
                values[col.name] = None if col.nullable else ERASED
        for col in jsons:
            scrubbed = scrub(row[col])
            if scrubbed != row[col]:
                values[col.name] = scrubbed
        if values:
            session.execute(update(table).where(*(c == row[c] for c in pk)).values(**values))
            touched = True
    return touched


def _is_text(column: Column[Any]) -> bool:
    return isinstance(column.type, String | Text)
