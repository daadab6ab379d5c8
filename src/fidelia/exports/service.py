"""Exports of a programme's members, events, ledger entries and redemptions as CSV or JSON
lines, streamed in constant memory.

Rows are read in keyset pages (``WHERE id > :last ORDER BY id LIMIT n``: uuid7 ids are in
creation order), each page formatted and handed on before the next is read, all in one
read-only transaction. Memory holds one page, whatever the size of the table. The members
export adds each page's identities, tier and balances with one query each (``IN`` the page's
ids), never one query per member.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from fidelia.errors import ValidationFailed
from fidelia.models import (
    Account,
    Entry,
    Event,
    LedgerTransaction,
    Member,
    MemberIdentity,
    MemberTier,
    Programme,
    Redemption,
    Reward,
    Wallet,
)

Format = Literal["csv", "jsonl"]
FORMATS: tuple[str, ...] = ("csv", "jsonl")
PAGE = 2000
Row = dict[str, Any]
Query = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class Table:
    """One exportable table: its documented columns (in order), the query of one page, and
    what its rows gain per page (members: identities, tier, balances)."""

    name: str
    columns: tuple[str, ...]
    key: Any  # the keyset column
    since: Any  # the column ``--since`` filters on
    select: Callable[[Programme], Query]
    extend: Callable[[Session, Programme, list[Row]], None] | None = None


def _members_select(programme: Programme) -> Query:
    m = Member
    return select(
        m.id, m.status, m.enrolment_channel, m.enrolment_store, m.enrolled_at, m.first_name,
        m.last_name, m.birth_date, m.locale, m.postal_code, m.attributes, m.updated_at,
    ).where(m.programme_id == programme.id)  # fmt: skip


def _members_extend(session: Session, programme: Programme, rows: list[Row]) -> None:
    ids = [r["id"] for r in rows]
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r.update(email=None, phone=None, card=None, external_ids=None, tier=None, balances={})
    identities = session.execute(
        select(MemberIdentity.member_id, MemberIdentity.kind, MemberIdentity.namespace,
               MemberIdentity.value)
        .where(MemberIdentity.member_id.in_(ids))
        .order_by(MemberIdentity.member_id, MemberIdentity.kind, MemberIdentity.value)
    )  # fmt: skip
    for owner, kind, namespace, value in identities:
        row = by_id[owner]
        if kind == "external":
            row["external_ids"] = (row["external_ids"] or {}) | {namespace: value}
        elif row.get(kind) is None:
            row[kind] = value
    tiers = session.execute(
        select(MemberTier.member_id, MemberTier.tier).where(MemberTier.member_id.in_(ids))
    )
    for owner, tier in tiers:
        by_id[owner]["tier"] = tier
    balances = session.execute(
        select(Account.member_id, Wallet.code, Account.available, Account.pending)
        .join(Wallet, Wallet.id == Account.wallet_id)
        .where(Account.member_id.in_(ids))
    )
    for holder, code, available, pending in balances:
        by_id[holder]["balances"][code] = {"available": available, "pending": pending}


def _events_select(programme: Programme) -> Query:
    e = Event
    return select(
        e.id, e.idempotency_key.label("event_id"), e.type, e.occurred_at, e.received_at,
        e.member_id, e.channel, e.store, e.reference, e.properties,
    ).where(e.programme_id == programme.id)  # fmt: skip


def _ledger_select(programme: Programme) -> Query:
    t = LedgerTransaction
    return (
        select(
            Entry.id,
            Entry.transaction_id,
            t.kind,
            Wallet.code.label("wallet"),
            Account.kind.label("account"),
            Account.member_id,
            Entry.amount,
            Entry.pending,
            Entry.lot_id,
            Entry.effective_at,
            t.occurred_at,
            t.posted_at,
            t.source_type,
            t.source_id,
            t.rule_id,
            t.rule_version,
            t.reverses_id,
            t.actor,
            t.reason,
        )
        .join(t, t.id == Entry.transaction_id)
        .join(Account, Account.id == Entry.account_id)
        .join(Wallet, Wallet.id == Account.wallet_id)
        .where(Entry.programme_id == programme.id)
    )


def _redemptions_select(programme: Programme) -> Query:
    r = Redemption
    return (
        select(
            r.id,
            r.member_id,
            r.reward_id,
            Reward.code.label("reward"),
            r.kind,
            r.status,
            r.quantity,
            r.points,
            r.value_minor,
            r.association,
            r.requested_at,
            r.issued_at,
            r.used_at,
            r.expires_at,
            r.cancelled_at,
            r.cancel_reason,
            r.spend_transaction_id,
            r.refund_transaction_id,
            r.updated_at,
        )
        .join(Reward, Reward.id == r.reward_id)
        .where(r.programme_id == programme.id)
    )


def _names(query: Callable[[Programme], Query], *more: str) -> tuple[str, ...]:
    probe = Programme(id=uuid.UUID(int=0))
    return (*(c.name for c in query(probe).selected_columns), *more)


TABLES: dict[str, Table] = {
    "members": Table(
        "members",
        _names(_members_select, "email", "phone", "card", "external_ids", "tier", "balances"),
        Member.id, Member.updated_at, _members_select, _members_extend,
    ),
    "events": Table(
        "events", _names(_events_select), Event.id, Event.received_at, _events_select
    ),
    "ledger": Table(
        "ledger", _names(_ledger_select), Entry.id, LedgerTransaction.posted_at, _ledger_select
    ),
    "redemptions": Table(
        "redemptions", _names(_redemptions_select), Redemption.id, Redemption.updated_at,
        _redemptions_select,
    ),
}  # fmt: skip


def table_of(name: str) -> Table:
    """The exportable table called ``name``; 422 naming the known ones otherwise."""
    found = TABLES.get(name)
    if found is None:
        known = ", ".join(TABLES)
        raise ValidationFailed.on("table", f"unknown table {name!r}; one of {known}")
    return found


def check_format(value: str) -> Format:
    if value not in FORMATS:
        raise ValidationFailed.on("format", f"unknown format {value!r}; one of csv, jsonl")
    return value  # type: ignore[return-value]


def pages(
    session: Session,
    *,
    programme: Programme,
    table: Table,
    since: datetime | None = None,
    page: int = PAGE,
    after: Any = None,
) -> Iterator[list[Row]]:
    """The table's rows for the programme, one keyset page at a time, in id order (those
    after the key ``after`` when given: an export job's next chunk)."""
    base = table.select(programme)
    if since is not None:
        base = base.where(table.since >= since)
    last: Any = after
    while True:
        where: list[ColumnElement[bool]] = [] if last is None else [table.key > last]
        rows = [
            dict(r._mapping)
            for r in session.execute(base.where(*where).order_by(table.key).limit(page))
        ]
        if not rows:
            return
        if table.extend is not None:
            table.extend(session, programme, rows)
        yield rows
        if len(rows) < page:
            return
        last = rows[-1]["id"]


def _value(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if type(value) in (str, int, bool):  # most cells: no conversion
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=_value, separators=(",", ":"), ensure_ascii=False)
    return "" if value is None else _value(value)


def render(
    rows_pages: Iterator[list[Row]], *, columns: Sequence[str], fmt: Format, header: bool = True
) -> Iterator[bytes]:
    """Each page as bytes: CSV (a header line first, unless ``header`` is false: a
    continuation) or one JSON object per line."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow(columns)
            yield buffer.getvalue().encode()
        for rows in rows_pages:
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_cell(row[c]) for c in columns] for row in rows)
            yield buffer.getvalue().encode()
        return
    for rows in rows_pages:
        lines = (
            json.dumps({c: row[c] for c in columns}, default=_value, ensure_ascii=False)
            for row in rows
        )
        yield ("\n".join(lines) + "\n").encode()


def export(
    session: Session,
    *,
    programme: Programme,
    table: str,
    fmt: str,
    since: datetime | None = None,
    page: int = PAGE,
) -> Iterator[bytes]:
    """The whole export as a stream of byte chunks (checks ``table`` and ``fmt`` first)."""
    spec, checked = table_of(table), check_format(fmt)
    found = pages(session, programme=programme, table=spec, since=since, page=page)
    return render(found, columns=spec.columns, fmt=checked)
