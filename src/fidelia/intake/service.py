"""Event intake: one path for the API (single and batch) and the bulk importer.

A batch is checked in Python first (shape, properties, identities, orders), with the lookups it
needs done in a few bulk queries; then the accepted events are written together. A rejected
event writes nothing. The event's ``id`` is its idempotency key: a resend with the same content
returns the first outcome and changes nothing; the same key with other content is refused.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia import notices
from fidelia.engagement import plus as engagement_plus
from fidelia.errors import Conflict, FideliaError, FieldError, ValidationFailed
from fidelia.events import types
from fidelia.events.checks import OrderBook, typed_properties, validation_failed
from fidelia.events.schemas import (
    BUILT_IN_TYPES,
    ConsentChanged,
    Enrolment,
    EventIn,
    EventOutcome,
    ProfileUpdated,
    Purchase,
    Return,
)
from fidelia.intake import anonymous
from fidelia.intake import effects as rules
from fidelia.intake.counters import CountersMoved
from fidelia.intake.joining import MemberChanges, more_keys
from fidelia.kit.attach import attached
from fidelia.kit.built import built
from fidelia.kit.bulk import insert_rows
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.members import service as members
from fidelia.members.service import IdentityKey
from fidelia.merges import policy as merge_policy
from fidelia.models import Base, Event, Member, Programme
from fidelia.notices.outcomes import event_notices
from fidelia.programmes.service import settings_of
from fidelia.rules.compiler import CompiledProgramme
from fidelia.rules.state import EngineEvent
from fidelia.segments import live as segments
from fidelia.segments import summaries
from fidelia.traits import service as traits

# The batch's reads, compiled once (kit.prepared: SQLAlchemy's execution of a small query
# cost several times the database's work on the intake path).
_EXISTING = Prepared(
    select(Event.idempotency_key, Event.fingerprint, Event.outcome).where(
        Event.programme_id == bindparam("programme_id"),
        Event.idempotency_key.in_(bindparam("keys", expanding=True)),
    )
)

_MEMBERS = Member.__table__
_LOCK_MEMBERS = Prepared(  # rows made objects by engagement.attached, without the ORM's loader
    select(_MEMBERS)
    .where(
        _MEMBERS.c.programme_id == bindparam("programme_id"),
        _MEMBERS.c.id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(_MEMBERS.c.id)
    .with_for_update()
)


class UnknownMember(FideliaError):
    status_code = 422
    code = "unknown_member"


class MemberClosed(FideliaError):
    status_code = 409
    code = "member_closed"


class IdempotencyConflict(FideliaError):
    status_code = 409
    code = "idempotency_conflict"


def fingerprint(event: EventIn) -> str:
    """SHA-256 of the validated event (values normalised, fields in a fixed order)."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()


def rejected(index: int, key: str, error: FideliaError) -> EventOutcome:
    return EventOutcome(
        index=index,
        id=key,
        status="rejected",
        error=error.code,
        detail=error.detail,
        fields=[f.as_dict() for f in error.fields],
    )


def parse(payloads: Sequence[Mapping[str, Any]]) -> list[EventIn | EventOutcome]:
    """Each payload as an ``EventIn``, or a rejected outcome saying which field is wrong."""
    parsed: list[EventIn | EventOutcome] = []
    for i, payload in enumerate(payloads):
        try:
            parsed.append(EventIn.model_validate(payload))
        except ValidationError as exc:
            key = payload.get("id") if isinstance(payload, Mapping) else None
            key = key if isinstance(key, str) and len(key) <= 200 else ""  # echo a sane id only
            parsed.append(rejected(i, key, validation_failed(exc, ())))
    return parsed


EnrolAs = Literal["prospect", "active"]
OnEnrolled = Literal["update", "refuse"]


def ingest_payloads(
    session: Session,
    *,
    programme: Programme,
    payloads: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
    enrol_unknown: EnrolAs | None = None,
    actor: str = "intake",
) -> list[EventOutcome]:
    """Validate and ingest raw payloads; every payload gets its own outcome, in order."""
    events = parse(payloads)
    return ingest(
        session,
        programme=programme,
        events=events,
        now=now,
        enrol_unknown=enrol_unknown,
        actor=actor,
    )


def ingest(
    session: Session,
    *,
    programme: Programme,
    events: Sequence[EventIn | EventOutcome],
    now: datetime | None = None,
    enrol_unknown: EnrolAs | None = None,
    on_enrolled: OnEnrolled = "update",
    actor: str = "intake",
    vouched: Mapping[int, tuple[dict[str, Any], Any]] | None = None,
) -> list[EventOutcome]:
    """Ingest parsed events (already-rejected outcomes pass through) in one savepoint.

    If a concurrent writer stored one of these events (or enrolled one of these identities)
    between our checks and our insert, the savepoint is rolled back and the batch is checked
    again, which now sees the other writer's rows. Likewise if another writer moved a
    programme-wide rule counter (budget, first-N) this batch read: the batch runs again with
    those counters locked (:mod:`fidelia.intake.counters`). ``enrol_unknown`` overrides the
    programme's policy for unknown identities (bulk imports of a customer base enrol them
    ``active``).

    An ``enrolment`` of a member who is already enrolled (not a prospect) is not an enrolment:
    with ``on_enrolled="update"`` it fills the profile's gaps, links new identities and records
    consents, runs no rule, and its outcome says ``already_enrolled``; with ``"refuse"`` (new
    members only) it is rejected as ``already_enrolled``. ``actor`` is who sent the events, for
    the status history of the members they create or activate. ``vouched``: by position in
    ``events``, the stored properties and typed model of events whose reader checked them as
    their validation would (the bulk importer's CDNOW lines), not validated again.
    """
    now = now or utcnow()
    lock_counters = False
    for attempt in range(4):
        try:
            with session.begin_nested():
                batch = _Batch(
                    session,
                    programme,
                    now,
                    enrol_unknown,
                    lock_counters=lock_counters,
                    on_enrolled=on_enrolled,
                    actor=actor,
                    vouched=vouched or {},
                )
                return batch.run(events)
        except IntegrityError:
            if attempt == 3:
                raise
        except CountersMoved:
            if lock_counters:
                raise  # cannot happen: the counters were locked
            lock_counters = True
    raise AssertionError("unreachable")


@dataclass
class _Batch:
    session: Session
    programme: Programme
    now: datetime
    enrol_unknown: EnrolAs | None = None
    lock_counters: bool = False
    on_enrolled: OnEnrolled = "update"
    actor: str = "intake"
    draft: CompiledProgramme | None = None  # a dry run against a draft document
    vouched: Mapping[int, tuple[dict[str, Any], Any]] = field(default_factory=dict)
    identities: dict[tuple[str, str, str], uuid.UUID] = field(default_factory=dict)
    members: dict[uuid.UUID, Member] = field(default_factory=dict)
    moved: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # merged -> survivor
    rows: list[dict[str, Any]] = field(default_factory=list)
    purchases: dict[uuid.UUID, Purchase] = field(default_factory=dict)  # by event id

    def run(self, items: Sequence[EventIn | EventOutcome]) -> list[EventOutcome]:
        outcomes: list[EventOutcome | None] = [None] * len(items)
        todo: list[tuple[int, EventIn, str]] = []
        firsts: dict[str, tuple[int, str]] = {}
        copies: list[tuple[int, int]] = []
        keys = [e.id for e in items if isinstance(e, EventIn)]
        existing = self._existing(keys) | anonymous.existing(
            self.session, programme=self.programme, keys=keys
        )
        for i, item in enumerate(items):
            if isinstance(item, EventOutcome):
                outcomes[i] = item
                continue
            fp = fingerprint(item)
            if item.id in existing:
                outcomes[i] = _replay(i, item.id, fp, *existing[item.id])
            elif item.id in firsts:
                first, first_fp = firsts[item.id]
                if first_fp == fp:
                    copies.append((i, first))
                else:
                    outcomes[i] = rejected(i, item.id, _reused(item.id))
            else:
                firsts[item.id] = (i, fp)
                todo.append((i, item, fp))
        unnamed = [t for t in todo if t[1].member is None]  # anonymous purchases: KPIs only
        todo = [t for t in todo if t[1].member is not None]
        self._prepare([e for _, e, _ in todo])
        todo = self._drop_late_resends(todo, outcomes)
        for i, event, fp in todo:
            outcomes[i] = self._accept_or_reject(i, event, fp)
        self._write()
        if unnamed:
            done = anonymous.record(
                self.session, programme=self.programme, events=unnamed, now=self.now
            )
            for i, outcome in done.items():
                outcomes[i] = outcome
        for i, first in copies:
            origin = outcomes[first]
            assert origin is not None
            status = "duplicate" if origin.status == "accepted" else origin.status
            outcomes[i] = origin.model_copy(update={"index": i, "status": status})
        return [o for o in outcomes if o is not None]

    def _drop_late_resends(
        self, todo: list[tuple[int, EventIn, str]], outcomes: list[EventOutcome | None]
    ) -> list[tuple[int, EventIn, str]]:
        """On PostgreSQL a concurrent writer of the same events held their members' locks until
        it committed; look again now that we hold them, so that its events come back as resends
        (not as "order already sent"). SQLite's single writer needs no second look."""
        if not todo or self.session.get_bind().dialect.name != "postgresql":
            return todo
        late = self._existing([e.id for _, e, _ in todo])
        for i, event, fp in todo:
            if event.id in late:
                outcomes[i] = _replay(i, event.id, fp, *late[event.id])
        return [t for t in todo if t[1].id not in late]

    def _existing(self, keys: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for start in range(0, len(keys), 500):
            params = {"programme_id": self.programme.id, "keys": keys[start : start + 500]}
            for key, fp, outcome in _EXISTING.rows(self.session, params):
                found[key] = (fp, outcome)
        return found

    def _prepare(self, events: list[EventIn]) -> None:
        """Load, in a few queries, the identities, members, schemas and orders the batch needs."""
        self.keys: dict[int, list[IdentityKey] | FideliaError] = {}
        self.more_keys: dict[int, list[IdentityKey]] = {}
        all_keys: list[IdentityKey] = []
        for event in events:
            try:
                keys = members.keys_of_ref(self.programme, event.ref, loc=("member",))
            except FideliaError as err:
                self.keys[id(event)] = err
                continue
            self.keys[id(event)] = keys
            self.more_keys[id(event)] = more_keys(self.programme, event)
            all_keys.extend(keys)
            all_keys.extend(self.more_keys[id(event)])
        self.identities = members.find_identities(
            self.session, programme=self.programme, keys=all_keys
        )
        self.changes = MemberChanges(
            self.session, self.programme, self.now, self.actor, self.identities
        )
        wanted = set(self.identities.values()) | {e.ref.id for e in events if e.ref.id}
        self._load_members(wanted)
        self._join_records(events)
        custom = any(e.type not in BUILT_IN_TYPES for e in events)
        self.schemas = types.validators(self.session, programme=self.programme) if custom else {}
        order_ids = {
            str(e.properties.get("order_id")) for e in events if e.type in ("purchase", "return")
        }
        self.orders = OrderBook(self.session, self.programme, order_ids)
        self.settings = settings_of(self.programme)
        compiled = self.draft or rules.compiled_for(self.session, self.programme)
        self.engine = (
            rules.EngineRun(
                self.session, self.programme, compiled, self.now, lock_counters=self.lock_counters
            )
            if compiled
            else None
        )
        if self.engine is not None:
            self.engine.load_states(self.members)

    def _load_members(self, ids: set[uuid.UUID]) -> None:
        """Lock the members the batch touches, in primary-key order (no deadlocks)."""
        ordered = sorted(ids)
        for start in range(0, len(ordered), 500):
            params = {"programme_id": self.programme.id, "ids": ordered[start : start + 500]}
            for values in _LOCK_MEMBERS.rows(self.session, params):
                member = attached(self.session, Member, values)
                self.members[member.id] = member

    def _join_records(self, events: list[EventIn]) -> None:
        """Follow merged members to their survivors; with ``settings.merge.on_sure_match:
        merge``, merge the members one event names together (:mod:`fidelia.merges.policy`)."""
        self.moved = merge_policy.follow_merged(
            self.session, programme=self.programme, members=self.members
        )
        self.sure: dict[int, uuid.UUID] = {}  # id(enrolment) -> the member it is a sure match of
        if settings_of(self.programme).merge.on_sure_match != "merge":
            return
        groups = []
        for event in events:
            keys = self.keys[id(event)]
            if isinstance(keys, FideliaError):
                continue
            named = [*keys, *self.more_keys[id(event)]]
            owners = {self.identities[k.triple] for k in named if k.triple in self.identities}
            owners |= {event.ref.id} if event.ref.id is not None else set()
            groups.append({self.moved.get(m, m) for m in owners})
        joined = merge_policy.join_named(
            self.session,
            programme=self.programme,
            groups=groups,
            members=self.members,
            identities=self.identities,
            actor=self.actor,
        )
        self.moved = {m: joined.get(s, s) for m, s in self.moved.items()} | joined
        self._sure_matches(events)

    def _sure_matches(self, events: list[EventIn]) -> None:
        """Enrolments naming no member whose profile is a sure match of a member: theirs."""
        for event in events:
            if event.type != "enrolment" or self._names_someone(event):
                continue
            profile = event.properties.get("profile")
            if not isinstance(profile, dict):
                continue
            match = merge_policy.sure_match_of_profile(
                self.session, programme=self.programme, profile=profile
            )
            if match is not None:
                self.sure[id(event)] = match
        self._load_members(set(self.sure.values()) - self.members.keys())

    def _names_someone(self, event: EventIn) -> bool:
        """Whether the event names a member (by id or a known identity), or has invalid keys."""
        keys = self.keys[id(event)]
        if isinstance(keys, FideliaError) or event.ref.id is not None:
            return True
        return any(k.triple in self.identities for k in keys)

    def _accept_or_reject(self, index: int, event: EventIn, fp: str) -> EventOutcome:
        try:
            return self._accept(index, event, fp)
        except FideliaError as err:
            return rejected(index, event.id, err)

    def _accept(self, index: int, event: EventIn, fp: str) -> EventOutcome:
        """Every check that can refuse the event runs before anything is written for it."""
        properties, typed = self.vouched.get(index) or typed_properties(
            event.type, event.properties, self.schemas
        )
        keys = self.keys[id(event)]
        if isinstance(keys, FideliaError):
            raise keys
        member = self._find_member(event, keys)
        if member is None:
            self._check_can_enrol(event, keys)
        elif member.status == "closed":
            raise MemberClosed(f"member {member.id} is closed")
        joining = typed if isinstance(typed, Enrolment) else None
        already = joining is not None and member is not None and member.status != "prospect"
        more = self.more_keys[id(event)]
        if joining is not None:
            refuse = self.on_enrolled == "refuse"
            self.changes.check_enrolment(keys, more, member, already=already, refuse=refuse)
        member_id = member.id if member is not None else uuid7()
        self._check_order(typed, member_id)
        self._screen(event, properties, joining, [*keys, *more], member, member_id, already)
        created = member is None
        event_id = uuid7()
        if member is None:
            member = self._enrol(event, [*keys, *more], member_id, event_id, joining)
        elif joining is not None:
            self.changes.join(event, [*keys, *more], member, event_id, joining, already=already)
        effects, totals = (
            ([], {}) if already else self._engine(event, properties, typed, event_id, member)
        )
        reference = self._apply(event, member, typed, event_id, effects)
        outcome = built(  # from checked values: no validation, every field in order
            EventOutcome,
            {
                "index": index,
                "id": event.id,
                "status": "accepted",
                "event_id": event_id,
                "member_id": member.id,
                "member_created": created,
                "already_enrolled": already,
                "error": None,
                "detail": None,
                "fields": [],
                "totals": totals,
                "effects": effects,
            },
        )
        self.rows.append(
            {
                "id": event_id,
                "programme_id": self.programme.id,
                "idempotency_key": event.id,
                "fingerprint": fp,
                "type": event.type,
                "occurred_at": event.occurred_at,
                "received_at": self.now,
                "member_id": member.id,
                "channel": event.channel,
                "store": event.store,
                "reference": reference,
                "properties": properties,
                # dumped in _write: rule vouchers fill their effects when the batch issues them
                "outcome": outcome,
            }
        )
        return outcome

    def _find_member(self, event: EventIn, keys: list[IdentityKey]) -> Member | None:
        owners = {self.identities[k.triple] for k in keys if k.triple in self.identities}
        if event.ref.id is not None:
            if event.ref.id not in self.members:
                raise ValidationFailed.on(("member", "id"), f"member {event.ref.id} does not exist")
            owners.add(event.ref.id)
        owners = {self.moved.get(m, m) for m in owners}  # merged members: their survivors
        if not owners and id(event) in self.sure:  # a sure match (on_sure_match: merge)
            owners = {self.sure[id(event)]}
        if len(owners) > 1:
            raise Conflict(
                "the identities given belong to different members",
                fields=[FieldError(("member",), "identities of different members")],
            )
        return self.members[owners.pop()] if owners else None

    def _check_can_enrol(self, event: EventIn, keys: list[IdentityKey]) -> None:
        enrols = self.enrol_unknown or self.settings.unknown_member == "enrol_prospect"
        if event.type != "enrolment" and not enrols:
            raise UnknownMember(
                "no member has this identity (the programme does not enrol unknown members)",
                fields=[FieldError(("member",), "unknown identity")],
            )
        if not keys:
            raise ValidationFailed.on(
                ("member",), "a new member needs a card, email, phone or external id"
            )

    def _screen(
        self,
        event: EventIn,
        properties: dict[str, Any],
        joining: Enrolment | None,
        keys: list[IdentityKey],
        member: Member | None,
        member_id: uuid.UUID,
        already: bool,
    ) -> None:
        """An enrolment's referral code, a store check-in: checked before anything is written
        (:func:`fidelia.engagement.plus.screen`); other events pass at no cost."""
        code = joining.referral_code if joining is not None and not already else None
        if code is None and event.type != "store_check_in":
            return
        engagement_plus.screen(
            self.session,
            programme=self.programme,
            run=self.engine.plus if self.engine is not None else None,
            event=_fact(event, properties, joining),
            member=member,
            member_id=member_id,
            identities=[(k.kind, k.value) for k in keys],
            referral_code=code,
            profile=joining.profile.model_dump(mode="json") if joining is not None else {},
        )

    def _check_order(self, typed: Any, member_id: uuid.UUID) -> None:
        if isinstance(typed, Purchase):
            self.orders.check_purchase(typed)
        elif isinstance(typed, Return):
            self.orders.check_return(member_id, typed)

    def _enrol(
        self,
        event: EventIn,
        keys: list[IdentityKey],
        member_id: uuid.UUID,
        event_id: uuid.UUID,
        joining: Enrolment | None,
    ) -> Member:
        """A new member: active if the event is their enrolment, else a prospect (or what
        ``enrol_unknown`` says)."""
        status = "active" if joining is not None else (self.enrol_unknown or "prospect")
        member = self.changes.create(
            event, keys, member_id, event_id, status=status, joining=joining
        )
        self.members[member_id] = member
        if self.engine is not None:
            self.engine.looked_up.add(member_id)  # a new member has no stored state to read
        return member

    def _engine(
        self,
        event: EventIn,
        properties: dict[str, Any],
        typed: Any,
        event_id: uuid.UUID,
        member: Member,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Run the programme's rules on the event (and take back what a return's lines earned)."""
        if self.engine is None:
            return [], {}
        self.engine.load_states([member.id])
        fact = _fact(event, properties, typed)
        evaluation = self.engine.process(
            event=fact, event_id=event_id, member_id=member.id, profile=members.facts(member)
        )
        result = evaluation.as_dict()
        effects: list[dict[str, Any]] = result["effects"]
        if isinstance(typed, Return):
            order = self.orders.purchases[typed.order_id]
            effects = effects + self.engine.take_back(
                typed,
                return_event_id=event_id,
                purchase_event_id=order.event_id,
                bought=order.bought,
                awards=order.awards,
                returned_before=dict(self.orders.returned[typed.order_id]),
            )
        return effects, result["totals"]

    def _apply(
        self,
        event: EventIn,
        member: Member,
        typed: Any,
        event_id: uuid.UUID,
        effects: list[dict[str, Any]],
    ) -> str | None:
        """What a built-in event changes besides the log; returns the event's order reference."""
        if isinstance(typed, Purchase):
            self.orders.add_purchase(member.id, event_id, typed, effects)
            self.purchases[event_id] = typed
            return typed.order_id
        if isinstance(typed, Return):
            self.orders.add_return(typed)
            return typed.order_id
        if isinstance(typed, ProfileUpdated):
            keys = self.keys[id(event)]
            assert not isinstance(keys, FideliaError)
            self.changes.link_identities(keys, member)
            members.update_profile(self.session, member=member, profile=typed.profile)
        elif isinstance(typed, ConsentChanged):
            self.changes.consent(member, event, typed.channel, typed.granted, typed.source)
        return None

    def _write(self) -> None:
        """Members (ORM, flushed together), then identities and events in one executemany each."""
        if self.engine is not None:
            self.engine.write()
        self.session.flush()
        self.changes.write()
        if self.rows:
            for row in self.rows:
                row["outcome"] = row["outcome"].model_dump(mode="json", exclude={"index"})
            insert_rows(self.session, Base.metadata.tables["events"], self.rows)
            notices.record_many(self.session, self.programme.id, _notices(self.rows))
            facts = [
                (r["member_id"], EngineEvent(r["type"], r["occurred_at"], r["channel"], r["store"],
                                             purchase=self.purchases.get(r["id"])))
                for r in self.rows
            ]  # fmt: skip
            summaries.add_events(self.session, programme_id=self.programme.id, rows=self.rows)
            # traits before segments, which read them
            traits.apply_events(self.session, programme=self.programme, events=facts, now=self.now)
            moved = [(r["member_id"], r["type"], r["id"]) for r in self.rows]
            # segments read what the group wrote (events, awards, tiers): after all of it
            segments.apply_events(
                self.session, programme=self.programme, events=moved, now=self.now
            )


def _notices(rows: list[dict[str, Any]]) -> list[notices.Notice]:
    """The batch's notices (webhooks, feed), in event order: one INSERT for the batch."""
    return [
        notice
        for r in rows
        for notice in event_notices(
            member_id=r["member_id"],
            event_id=r["id"],
            event_type=r["type"],
            occurred_at=r["occurred_at"],
            outcome=r["outcome"],
        )
    ]


def _fact(event: EventIn, properties: dict[str, Any], typed: Any) -> EngineEvent:
    """The event as the engine reads it."""
    return rules.engine_event(
        type=event.type,
        occurred_at=event.occurred_at,
        channel=event.channel,
        store=event.store,
        properties=properties,
        typed=typed,
        key=event.id,
    )


def _replay(index: int, key: str, fp: str, stored_fp: str, outcome: dict[str, Any]) -> EventOutcome:
    if fp != stored_fp:
        return rejected(index, key, _reused(key))
    replay = EventOutcome.model_validate(outcome)
    return replay.model_copy(update={"index": index, "status": "duplicate"})


def _reused(key: str) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"event id {key!r} was already used for a different event",
        fields=[FieldError(("id",), "idempotency key reused with other content")],
    )


def dry_run(
    session: Session,
    *,
    programme: Programme,
    event: EventIn,
    now: datetime | None = None,
    draft: CompiledProgramme | None = None,
) -> dict[str, Any]:
    """The effects and explanations ``event`` would produce now (under ``draft``, a compiled
    document not yet published, if given); writes nothing.

    An unknown member is evaluated as a new member with an empty history; the enrolment of a
    member already enrolled runs no rule.
    """
    now = now or utcnow()
    if event.member is None:  # an anonymous purchase earns nothing
        typed_properties(event.type, event.properties, {})
        return {"member_id": None, "version": 0, "totals": {}, "effects": [], "skipped": []}
    batch = _Batch(session, programme, now, draft=draft)
    batch._prepare([event])
    properties, typed = typed_properties(event.type, event.properties, batch.schemas)
    keys = batch.keys[id(event)]
    if isinstance(keys, FideliaError):
        raise keys
    member = batch._find_member(event, keys)
    already = isinstance(typed, Enrolment) and member is not None and member.status != "prospect"
    if batch.engine is None or already:
        return {
            "member_id": member.id if member else None,
            "version": 0,
            "totals": {},
            "effects": [],
            "skipped": [],
        }
    fact = _fact(event, properties, typed)
    member_id = member.id if member else uuid7()
    profile = members.facts(member) if member else None
    _, evaluation = batch.engine.evaluate(fact, member_id, profile)
    return {
        "member_id": member.id if member else None,
        "version": "draft" if draft is not None else programme.live_version,
        **evaluation.as_dict(),
    }
