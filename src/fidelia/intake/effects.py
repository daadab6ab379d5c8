"""The engine inside a transaction: load what it reads, evaluate, apply what it decides.

Design note
-----------
Intake calls :class:`EngineRun` once per batch. It loads the members' engine states in one
query (and the programme counters of rules with a budget or a first-N limit, locked), runs the
pure :func:`~fidelia.rules.engine.evaluate` per event, posts awards through the ledger, and
writes the new states and counters back before the batch commits: effects, state and event are
one transaction. Awards are planned (checked) as each event is evaluated and posted together
at :meth:`EngineRun.write`, set-based (:class:`~fidelia.ledger.operations.DeferredAwards`):
anything that reads the ledger earlier flushes them first -- a return in the same batch as its
purchase (:meth:`EngineRun.take_back`), a challenge completion's points (through the ledger
repository) -- so that every reader sees the batch's earlier awards, in their order.
Returns take back, award by award, what the returned lines earned, computed from the per-line
allocation the purchase's awards recorded (never recomputed with today's rules). Compiled
programmes are cached per (programme, version): versions never change.

After the awards, :meth:`EngineRun.process` applies the effects other domains own (badges
through engagement, vouchers through rewards), advances the state, then lets the tiers and
engagement domains follow the event (upgrade, condition badges, challenge progress); what
they did is appended to the outcome (:class:`RunOutcome`). A return's tier policy runs at the
end of :meth:`EngineRun.take_back`, once the returned lines' points (status points included)
are taken back (:mod:`fidelia.intake.returns`).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from fidelia.engagement import service as engagement
from fidelia.engagement.definitions import definitions_for
from fidelia.engagement.plus import PlusRun, plus_for
from fidelia.errors import FideliaError
from fidelia.events.schemas import Purchase, Return
from fidelia.intake import returns
from fidelia.intake.counters import CounterBook
from fidelia.kit.bulk import insert_rows
from fidelia.kit.clock import utcnow
from fidelia.kit.conditions import condition_fields
from fidelia.kit.prepared import Prepared
from fidelia.ledger import operations as ledger
from fidelia.models import Base, Event, MemberTraits, Programme, SegmentMember
from fidelia.models import MemberState as MemberStateRow
from fidelia.offers.boosts import Extras, extras_for
from fidelia.programmes.documents import get_version, rules_of
from fidelia.rewards.issuing import VoucherRequest, issue_many
from fidelia.rules.compiler import CompiledProgramme, compile_programme
from fidelia.rules.engine import evaluate
from fidelia.rules.outcome import Amount, Award, AwardBadge, Evaluation, IssueVoucher
from fidelia.rules.state import (
    EngineEvent,
    MemberState,
    ProgrammeCounters,
    apply_event,
    basket_amount,
    record_counters,
)
from fidelia.tiers import service as tiers
from fidelia.traits import service as traits_service

_STATES = Base.metadata.tables["member_states"]
_UPDATE_STATES = Prepared(
    update(_STATES)
    .where(_STATES.c.member_id == bindparam("b_member_id"))
    .values(state=bindparam("b_state"), updated_at=bindparam("b_at"))
)
_READ_STATES = Prepared(  # compiled once (kit.prepared)
    select(_STATES.c.member_id, _STATES.c.state).where(
        _STATES.c.member_id.in_(bindparam("members", expanding=True))
    )
)
_CACHE: OrderedDict[tuple[uuid.UUID, int], CompiledProgramme] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class RunOutcome(Evaluation):
    """An evaluation plus what the other domains did with the event (JSON effects)."""

    applied: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The evaluation's JSON shape, the applied effects after the engine's."""
        result = Evaluation.as_dict(self)
        result["effects"].extend(self.applied)
        return result


def compiled_for(
    session: Session, programme: Programme, version: int | None = None
) -> CompiledProgramme | None:
    """The programme's live (or given) version compiled, or None if no version was applied."""
    version = programme.live_version if version is None else version
    if version == 0:
        return None
    key = (programme.id, version)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    document = get_version(session, programme=programme, version=version).document
    compiled = compile_programme(rules_of(programme, document))
    with _CACHE_LOCK:
        _CACHE[key] = compiled
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled


def engine_event(
    *,
    type: str,
    occurred_at: datetime,
    channel: str | None,
    store: str | None,
    properties: dict[str, Any],
    typed: Any,
    key: str,
) -> EngineEvent:
    purchase = typed if isinstance(typed, Purchase) else None
    return EngineEvent(type, occurred_at, channel, store, properties, purchase, key)


@dataclass
class EngineRun:
    """The engine over one batch of events of one programme."""

    session: Session
    programme: Programme
    compiled: CompiledProgramme
    now: datetime
    states: dict[uuid.UUID, MemberState] = field(default_factory=dict)
    stored: set[uuid.UUID] = field(default_factory=set)
    changed: set[uuid.UUID] = field(default_factory=set)
    looked_up: set[uuid.UUID] = field(default_factory=set)
    lock_counters: bool = False
    book: CounterBook | None = None
    returns: dict[uuid.UUID, tuple[uuid.UUID, datetime]] = field(default_factory=dict)
    orders: dict[str, tuple[datetime, dict[str, Decimal]]] = field(default_factory=dict)
    awards: ledger.DeferredAwards | None = None
    # rule vouchers, issued set-based in :meth:`write`; each with the outcome effect it fills
    vouchers: list[tuple[VoucherRequest, dict[str, Any]]] = field(default_factory=list)
    tier_rows: dict[uuid.UUID, Any] = field(default_factory=dict)
    engagement_states: dict[uuid.UUID, Any] = field(default_factory=dict)
    reads_segments: bool = False
    reads_traits: frozenset[str] = frozenset()
    extras: Extras | None = None  # offers and plans that change earning (fidelia.offers)
    plus: PlusRun | None = None  # referrals, leaderboards, streaks, check-ins (if declared)

    def __post_init__(self) -> None:
        defs = definitions_for(self.session, self.programme)
        fields = {path for _, path in _rule_fields(self.compiled)} | defs.reads
        self.reads_segments = "member.segments" in fields
        self.reads_traits = frozenset(
            f.split(".")[1] for f in fields if f.startswith("traits.") and len(f) > 7
        )
        rules = [r for rs in self.compiled.by_type.values() for r in (*rs.base, *rs.boosters)]
        self.limited = {r.id for r in rules if r.budget is not None or r.first_n_members}
        self.programme_limits = bool(self.limited)
        self.extras = extras_for(self.session, self.programme)
        plus = plus_for(self.session, self.programme)
        if not plus.empty:
            self.plus = PlusRun(self.session, self.programme, self.now, plus)

    def load_states(self, member_ids: Iterable[uuid.UUID]) -> None:
        """Read the stored states of these members (once each per run)."""
        wanted = [m for m in member_ids if m not in self.looked_up]
        if not wanted:  # every event of the batch asks again for its member
            return
        self.looked_up.update(wanted)
        # Tier rows and engagement states too, in one query each for the batch: the per-event
        # steps then find them without a query (and without the autoflush before one).
        self.tier_rows.update(
            tiers.rows_for(self.session, programme=self.programme, member_ids=wanted)
        )
        self.engagement_states.update(
            engagement.states_for(self.session, programme=self.programme, member_ids=wanted)
        )
        if self.plus is not None:
            self.plus.load(wanted)
        for start in range(0, len(wanted), 500):
            chunk = {"members": wanted[start : start + 500]}
            for member_id, state in _READ_STATES.rows(self.session, chunk):
                self.states[member_id] = MemberState.from_json(state)
                self.stored.add(member_id)
        if self.reads_segments and wanted:
            self._load_segments(wanted)
        if self.extras is not None:
            self.extras.load(wanted)
        if self.reads_traits and wanted:
            self._load_traits(wanted)

    def _load_segments(self, member_ids: list[uuid.UUID]) -> None:
        """What rules read as ``member.segments``: memberships before this batch (one query)."""
        found: dict[uuid.UUID, set[str]] = {}
        rows = self.session.execute(
            select(SegmentMember.member_id, SegmentMember.segment).where(
                SegmentMember.programme_id == self.programme.id,
                SegmentMember.member_id.in_(member_ids),
            )
        )
        for member_id, code in rows:
            found.setdefault(member_id, set()).add(code)
        for member_id, codes in found.items():
            state = self.states.get(member_id) or MemberState()
            self.states[member_id] = replace(state, segments=frozenset(codes))

    def _load_traits(self, member_ids: list[uuid.UUID]) -> None:
        """What conditions read as ``traits.*``: the stored traits before this batch, as of
        the run's ``now`` (one query; only the windows and shares a condition names)."""
        section = traits_service.section_for(self.session, self.programme).section
        table = MemberTraits.__table__
        rows = self.session.execute(
            select(table).where(
                table.c.programme_id == self.programme.id, table.c.member_id.in_(member_ids)
            )
        ).mappings()
        for row in rows:
            ctx = traits_service.context_for(
                dict(row), now=self.now, section=section, only=self.reads_traits
            )
            state = self.states.get(row["member_id"]) or MemberState()
            self.states[row["member_id"]] = replace(state, traits=ctx)

    def _counters(self) -> ProgrammeCounters:
        """Programme-wide counters of rules with budgets or first-N, read once per run:
        without a lock, or locked when ``lock_counters`` (see :mod:`fidelia.intake.counters`)."""
        if self.book is None:
            self.book = CounterBook.load(
                self.session, self.programme.id, self.limited, locked=self.lock_counters
            )
        return self.book.counters

    def evaluate(
        self, event: EngineEvent, member_id: uuid.UUID, profile: Mapping[str, Any] | None = None
    ) -> tuple[MemberState, Evaluation]:
        """The member's state (with ``profile`` as its attributes, if given) and what the
        programme decides for ``event``; posts nothing."""
        state = self.states.get(member_id) or MemberState()
        if profile is not None and dict(state.attributes) != profile:
            state = replace(state, attributes=dict(profile))
        counters = self._counters() if self.programme_limits else ProgrammeCounters()
        return state, evaluate(event, state, self.compiled, counters, self.now)

    def process(
        self,
        *,
        event: EngineEvent,
        event_id: uuid.UUID,
        member_id: uuid.UUID,
        profile: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """Evaluate one event, post its awards, apply its other effects, advance the member's
        state, then let tiers and engagement follow (upgrade, badges, challenges).

        ``profile`` is what rules read as ``member.attributes`` (and the birth month). The
        awards are planned now and posted with the batch's (see :meth:`write`); if the event
        fails on the way, those not posted yet are dropped with it."""
        held = len(self.awards) if self.awards is not None else 0
        queued = len(self.vouchers)
        try:
            return self._process(event, event_id, member_id, profile)
        except BaseException:
            if self.awards is not None:
                self.awards.truncate(held)
            del self.vouchers[queued:]
            raise

    def _process(
        self,
        event: EngineEvent,
        event_id: uuid.UUID,
        member_id: uuid.UUID,
        profile: Mapping[str, Any] | None,
    ) -> Evaluation:
        state, ruled = self.evaluate(event, member_id, profile)
        evaluation, given = ruled, list[Any]()
        if self.extras is not None:  # boosters, plan multipliers, first-N offers
            evaluation, given = self.extras.extend(ruled, event, event_id, member_id)
        source = str(event_id)
        for effect in evaluation.awards:
            self._post(effect, event, source, member_id)
        if ruled.effects and self.programme_limits:
            record_counters(self._counters(), ruled, state)
            assert self.book is not None
            self.book.touched.update(e.rule_id for e in ruled.effects if e.rule_id in self.limited)
        applied = self._apply_effects(ruled, event, event_id, member_id)
        if given and self.extras is not None:
            applied += self.extras.deliver(given, self.now)
        state = apply_event(state, event, ruled, self.compiled)
        if evaluation is not ruled:
            state = Extras.balances(state, ruled, evaluation)
        state, followed = self._follow(state, evaluation, event, event_id, member_id)
        self.states[member_id] = state
        self.changed.add(member_id)
        if not applied and not followed:
            return evaluation
        return RunOutcome(evaluation.effects, evaluation.skipped, (*applied, *followed))

    def _apply_effects(
        self, evaluation: Evaluation, event: EngineEvent, event_id: uuid.UUID, member_id: uuid.UUID
    ) -> list[dict[str, Any]]:
        """Badges through engagement, vouchers through rewards (awards are posted already)."""
        done: list[dict[str, Any]] = []
        for effect in evaluation.effects:
            if isinstance(effect, AwardBadge):
                found = engagement.award_badge(
                    self.session,
                    programme=self.programme,
                    member_id=member_id,
                    badge=effect.badge,
                    at=event.occurred_at,
                    source=f"rule:{effect.rule_id}",
                    event_id=event_id,
                )
                done.extend([found] if found else [])
            elif isinstance(effect, IssueVoucher):
                # filled when the batch's vouchers are issued together (see write)
                placeholder: dict[str, Any] = {"kind": "voucher_issued", "reward": effect.reward}
                request = VoucherRequest(
                    member_id=member_id,
                    pool=effect.reward,
                    source="rule",
                    idempotency_key=f"event:{event_id}:{effect.rule_id}:{effect.reward}",
                    source_id=str(event_id),
                    fresh_key=True,  # derived from the event's new id
                )
                self.vouchers.append((request, placeholder))
                done.append(placeholder)
        return done

    def _follow(
        self,
        state: MemberState,
        evaluation: Evaluation,
        event: EngineEvent,
        event_id: uuid.UUID,
        member_id: uuid.UUID,
    ) -> tuple[MemberState, list[dict[str, Any]]]:
        """Tier qualification, condition badges and challenge progress after the event."""
        earned = evaluation.totals()  # read, never changed, by tiers and plus
        purchase = event.purchase
        if purchase is not None:
            units = {line.sku: line.amount / line.quantity for line in purchase.lines}
            self.orders[purchase.order_id] = (event.occurred_at, units)
        elif event.type == "return":
            self.returns[event_id] = (member_id, event.occurred_at)
        tier, effects = tiers.after_event(
            self.session,
            programme=self.programme,
            member_id=member_id,
            at=event.occurred_at,
            event_id=event_id,
            spend=basket_amount(purchase) if purchase is not None else None,
            earned=earned,
            rows=self.tier_rows,
        )
        if tier is not None and tier != state.tier:
            state = replace(state, tier=tier)
        effects += engagement.after_event(
            self.session,
            programme=self.programme,
            member_id=member_id,
            event=event,
            event_id=event_id,
            now=self.now,
            states=self.engagement_states,
            segments=state.segments,
            traits=state.traits,
        )
        if self.plus is not None:
            effects += self.plus.after_event(
                member_id=member_id, event=event, event_id=event_id, earned=earned
            )
        return state, effects

    def take_back(
        self,
        ret: Return,
        *,
        return_event_id: uuid.UUID,
        purchase_event_id: uuid.UUID,
        bought: dict[str, Decimal],
        awards: list[dict[str, Any]],
        returned_before: dict[str, Decimal],
    ) -> list[dict[str, Any]]:
        """Reverse what the returned lines earned, then apply the tier policy for returns."""
        self.flush_awards()  # the purchase may be in this batch: its awards must be written
        effects = returns.reversals(
            self.session,
            programme=self.programme,
            ret=ret,
            return_event_id=return_event_id,
            purchase_event_id=purchase_event_id,
            bought=bought,
            awards=awards,
            returned_before=returned_before,
            now=self.now,
        )
        return effects + self.after_return(ret, return_event_id, purchase_event_id, effects)

    def after_return(
        self,
        ret: Return,
        return_event_id: uuid.UUID,
        purchase_event_id: uuid.UUID,
        reversals: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The tier policy once a return's points are taken back (see ``tiers.on_return``)."""
        returned = self.returns.get(return_event_id)
        bought = self.orders.get(ret.order_id) or _purchase_of(self.session, purchase_event_id)
        if returned is None or bought is None:
            return []
        member_id, returned_at = returned
        purchased_at, units = bought
        taken: dict[str, Amount] = {}
        for r in reversals:
            taken[r["wallet"]] = taken.get(r["wallet"], 0) + Decimal(r["amount"])
        tier, effects = tiers.after_return(
            self.session,
            programme=self.programme,
            member_id=member_id,
            purchased_at=purchased_at,
            at=returned_at,
            event_id=return_event_id,
            spend=sum((units.get(x.sku, Decimal(0)) * x.quantity for x in ret.lines), Decimal(0)),
            taken=taken,
        )
        state = self.states.get(member_id)
        if tier is not None and state is not None and tier != state.tier:
            self.states[member_id] = replace(state, tier=tier)
        return effects

    def _post(self, award: Award, event: EngineEvent, source: str, member_id: uuid.UUID) -> None:
        """Plan the award of the event whose id is ``source`` (a bad wallet or amount fails
        the event here); it is posted with the batch's awards, or before anything reads the
        ledger."""
        if self.awards is None:
            self.awards = ledger.DeferredAwards(
                self.session, programme=self.programme, now=self.now
            )
        self.awards.add(
            ledger.AwardRequest(
                member_id=member_id,
                wallet=award.wallet,
                amount=award.amount,
                idempotency_key=f"event:{source}:{award.rule_id}:{award.wallet}",
                occurred_at=event.occurred_at,
                source_type="event",
                source_id=source,
                rule_id=award.rule_id,
                rule_version=award.rule_version,
                expires_at=award.expires_at if award.expires_at is not None else ledger.UNSET,
                available_at=award.available_at,
                fresh_key=True,  # derived from the event's new id
            )
        )

    def flush_awards(self) -> None:
        """Post the awards planned so far (one set-based posting for all of them)."""
        if self.awards is not None:
            self.awards.flush()

    def write(self) -> None:
        """Post the run's awards, then store the states and counters it changed: states in
        one UPDATE (executemany) and one INSERT, without loading them as objects."""
        if self.awards is not None:
            self.awards.flush()
            self.awards.close()
            self.awards = None
        self.session.flush()  # members enrolled by the batch go before their states
        if self.plus is not None:
            self.plus.write()
        self._issue_vouchers()
        at = utcnow()
        changed = sorted(self.changed)
        updated = [
            {"b_member_id": m, "b_state": self.states[m].to_json(), "b_at": at}
            for m in changed
            if m in self.stored
        ]
        if updated:
            _UPDATE_STATES.run_many(self.session, updated)
            held = self.session.identity_map
            for row in updated:
                found = held.get(Session.identity_key(MemberStateRow, row["b_member_id"]))
                if found is not None:
                    set_committed_value(found, "state", row["b_state"])
        new = [
            {
                "member_id": m,
                "programme_id": self.programme.id,
                "state": self.states[m].to_json(),
                "updated_at": at,
            }
            for m in changed
            if m not in self.stored
        ]
        insert_rows(self.session, _STATES, new)
        self.stored.update(self.changed)
        self.changed.clear()
        if self.book is not None:
            self.book.write()  # last: CountersMoved rolls the caller's savepoint back

    def _issue_vouchers(self) -> None:
        """The rule vouchers of the batch in one set-based issue; each outcome effect says
        what came of its own (a pool without codes fails that voucher, not the event)."""
        if not self.vouchers:
            return
        queued, self.vouchers = self.vouchers, []
        issued = issue_many(
            self.session,
            programme=self.programme,
            requests=[request for request, _ in queued],
            now=self.now,
            partial=True,
            members_known=True,  # the batch found or enrolled them
        )
        for (_, effect), result in zip(queued, issued, strict=True):
            if isinstance(result, FideliaError):
                effect.update(status="failed", reason=result.code, detail=result.detail)
            else:
                effect.update(status="issued", voucher_id=str(result.id), code=result.code)


def _rule_fields(compiled: CompiledProgramme) -> list[tuple[tuple[str | int, ...], str]]:
    """The fields the rules' conditions read (``member.segments`` and ``traits.*`` are loaded
    only when named)."""
    conditions = [c for r in compiled.doc.rules for c in (r.when, r.lines) if c is not None]
    return [found for c in conditions for found in condition_fields(c)]


def _purchase_of(
    session: Session, event_id: uuid.UUID
) -> tuple[datetime, dict[str, Decimal]] | None:
    """When a stored purchase happened and what one unit of each line cost."""
    row = session.execute(
        select(Event.occurred_at, Event.properties).where(Event.id == event_id)
    ).first()
    if row is None:
        return None
    purchase = Purchase.model_validate(row.properties)
    return row.occurred_at, {line.sku: line.amount / line.quantity for line in purchase.lines}
