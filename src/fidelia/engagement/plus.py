"""Referrals, leaderboards, streaks and store check-ins on the event path (issue 14).

Their definitions come from the live document (cached per immutable version, as badges). The
intake's engine run makes one :class:`PlusRun` per batch when the programme declares any of
them (none otherwise: no query is added for a programme without these sections). The run
reads what the batch's members need in one query per feature (:meth:`PlusRun.load`), moves
state per event in memory (:meth:`PlusRun.after_event`) and writes it with the batch
(:meth:`PlusRun.write`): leaderboard scores as one upsert (executemany).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.engagement.checkins_schemas import CheckInSection, StoreDef
from fidelia.engagement.definitions import definitions_for
from fidelia.engagement.leaderboards_schemas import LeaderboardDef
from fidelia.engagement.referrals_schemas import ReferralSection
from fidelia.engagement.rewarding import give_voucher
from fidelia.engagement.schemas import ChallengeDef
from fidelia.engagement.schemas import ChallengeReward as Gift
from fidelia.engagement.service import award_badge
from fidelia.engagement.streaks_schemas import StreakDef
from fidelia.kit.conditions import Predicate, compile_condition
from fidelia.ledger import operations as ledger
from fidelia.models import Member, Programme
from fidelia.rules.state import EngineEvent


@dataclass(frozen=True)
class PlusDefinitions:
    referral: ReferralSection | None = None
    leaderboards: dict[str, LeaderboardDef] = field(default_factory=dict)
    streaks: dict[str, StreakDef] = field(default_factory=dict)
    streak_tests: dict[str, Predicate] = field(default_factory=dict)
    check_in: CheckInSection | None = None
    challenges: dict[str, ChallengeDef] = field(default_factory=dict)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @property
    def empty(self) -> bool:
        return (
            self.referral is None
            and not self.leaderboards
            and not self.streaks
            and self.check_in is None
        )

    @property
    def stores(self) -> dict[str, StoreDef]:
        return {s.code: s for s in self.check_in.stores} if self.check_in else {}


EMPTY = PlusDefinitions()


def plus_for(session: Session, programme: Programme) -> PlusDefinitions:
    """The referral, leaderboard, streak and check-in sections of the live version."""
    if not programme.live_version:
        return EMPTY
    tz = ZoneInfo(programme.timezone)
    challenges = definitions_for(session, programme).challenges
    return versions.section(
        session, programme, "engagement.plus", lambda raw: build(dict(raw), tz, challenges)
    )


def build(
    document: dict[str, Any], tz: ZoneInfo, challenges: dict[str, ChallengeDef]
) -> PlusDefinitions:
    """Parse the sections of a stored document."""
    referral = document.get("referral")
    check_in = document.get("check_in")
    streaks = {s.code: s for s in map(StreakDef.model_validate, document.get("streaks", []))}
    tests = {
        code: compile_condition(s.when, tz=tz) for code, s in streaks.items() if s.when is not None
    }
    return PlusDefinitions(
        referral=ReferralSection.model_validate(referral) if referral is not None else None,
        leaderboards={
            b.code: b for b in map(LeaderboardDef.model_validate, document.get("leaderboards", []))
        },
        streaks=streaks,
        streak_tests=tests,
        check_in=CheckInSection.model_validate(check_in) if check_in is not None else None,
        challenges=challenges,
        tz=tz,
    )


def give(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    gift: Gift,
    key: str,
    source_type: str,
    source_id: str,
    at: datetime,
    event_id: uuid.UUID | None,
    now: datetime,
) -> dict[str, Any]:
    """Give ``gift`` (points, a voucher, a badge) once per ``key``; what was given."""
    given: dict[str, Any] = {}
    if gift.points is not None:
        ledger.award(
            session,
            programme=programme,
            member_id=member_id,
            wallet=gift.wallet,
            amount=gift.points,
            idempotency_key=key,
            occurred_at=at,
            source_type=source_type,
            source_id=source_id[:100],
            now=now,
        )
        given["points"] = {"wallet": gift.wallet, "amount": gift.points}
    if gift.voucher is not None:
        given["voucher"] = give_voucher(
            session,
            programme=programme,
            member_id=member_id,
            ref=gift.voucher,
            idempotency_key=key,
            source_id=str(event_id or source_id),
            now=now,
        )
    if gift.badge is not None:
        found = award_badge(
            session,
            programme=programme,
            member_id=member_id,
            badge=gift.badge,
            at=at,
            source=f"{source_type}:{source_id}",
            event_id=event_id,
        )
        given["badge"] = found or {"badge": gift.badge, "status": "held already"}
    return given


def screen(
    session: Session,
    *,
    programme: Programme,
    run: PlusRun | None,
    event: EngineEvent,
    member: Member | None,
    member_id: uuid.UUID,
    identities: list[tuple[str, str]],
    referral_code: str | None,
    profile: dict[str, Any],
) -> None:
    """Check an enrolment's referral code and a store check-in before the event is written
    (raises to refuse the event); what they decide is kept in ``run`` for the event's turn."""
    from fidelia.engagement import checkins, referrals

    if referral_code is not None:
        found = referrals.screen(
            session,
            programme=programme,
            section=run.defs.referral if run is not None else None,
            code=referral_code,
            identities=identities,
            profile=profile,
            member=member,
        )
        assert run is not None
        assert event.id is not None
        run.screened[event.id] = found
    if event.type == checkins.EVENT_TYPE and run is not None and run.defs.check_in is not None:
        assert event.id is not None
        run.screened[f"check_in:{event.id}"] = checkins.check(
            session,
            programme=programme,
            defs=run.defs,
            member_id=member_id,
            event=event,
            taken=run.taken_check_ins,
        )


@dataclass
class PlusRun:
    """Referrals, leaderboards, streaks and check-ins over one batch of the intake."""

    session: Session
    programme: Programme
    now: datetime
    defs: PlusDefinitions
    looked_up: set[uuid.UUID] = field(default_factory=set)
    referrals: dict[uuid.UUID, Any] = field(default_factory=dict)  # referee -> open Referral
    screened: dict[str, Any] = field(default_factory=dict)  # enrolment key -> Screened
    streaks: dict[tuple[uuid.UUID, str], Any] = field(default_factory=dict)
    visible: dict[uuid.UUID, bool] = field(default_factory=dict)
    scores: dict[tuple[str, str, str, uuid.UUID], list[Any]] = field(default_factory=dict)
    check_ins: list[dict[str, Any]] = field(default_factory=list)
    taken_check_ins: set[tuple[uuid.UUID, str, str]] = field(default_factory=set)
    new_codes: list[dict[str, Any]] = field(default_factory=list)  # referral codes to store

    def load(self, member_ids: list[uuid.UUID]) -> None:
        """What the batch's members need, one query per declared feature."""
        from fidelia.engagement import leaderboards, referrals, streaks  # they import this

        wanted = [m for m in member_ids if m not in self.looked_up]
        self.looked_up.update(wanted)
        if not wanted:
            return
        if self.defs.referral is not None:
            self.referrals.update(referrals.open_referrals(self.session, self.programme, wanted))
        if self.defs.streaks:
            self.streaks.update(streaks.rows_for(self.session, self.programme, wanted))
        if self.defs.leaderboards:
            self.visible.update(leaderboards.opted_in(self.session, self.programme, wanted))

    def after_event(
        self,
        *,
        member_id: uuid.UUID,
        event: EngineEvent,
        event_id: uuid.UUID,
        earned: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Move referrals, streaks, scores and check-ins for one accepted event."""
        from fidelia.engagement import checkins, leaderboards, referrals, streaks

        effects: list[dict[str, Any]] = []
        if self.defs.referral is not None:
            effects += referrals.after_event(self, member_id, event, event_id)
        if self.defs.streaks:
            effects += streaks.after_event(self, member_id, event, event_id)
        if self.defs.leaderboards:
            leaderboards.after_event(self, member_id, event, earned)
        if self.defs.check_in is not None and event.type == checkins.EVENT_TYPE:
            effects += checkins.record(self, member_id, event, event_id)
        return effects

    def add_score(
        self,
        board: str,
        period: str,
        scope: str,
        member_id: uuid.UUID,
        delta: Decimal,
        at: datetime,
    ) -> None:
        slot = self.scores.setdefault((board, period, scope, member_id), [Decimal(0), at])
        slot[0] += delta
        slot[1] = max(slot[1], at)

    def write(self) -> None:
        from fidelia.engagement import checkins, leaderboards, referrals

        self.session.flush()
        referrals.write_codes(self)
        leaderboards.write_scores(self)
        checkins.write(self)
        self.scores.clear()
        self.check_ins.clear()


def check_sections(
    *,
    referral: ReferralSection | None,
    leaderboards: list[LeaderboardDef],
    streaks: list[StreakDef],
    check_in: CheckInSection | None,
    badges: set[str],
    challenges: dict[str, ChallengeDef],
) -> None:
    """Cross-section checks of a document: codes unique, badges and challenges declared,
    streak conditions reading ``event.*`` only (422 with the path)."""
    from fidelia.errors import ValidationFailed
    from fidelia.kit.conditions import condition_fields

    gifts: list[tuple[tuple[str | int, ...], Gift | None]] = []
    if referral is not None:
        gifts.append((("referral", "at_enrolment"), referral.at_enrolment))
        if referral.first_purchase is not None:
            gifts.append(
                (("referral", "first_purchase", "referee"), referral.first_purchase.referee)
            )
            gifts.append(
                (("referral", "first_purchase", "referrer"), referral.first_purchase.referrer)
            )
    named: list[tuple[str, int, str, list[Gift]]] = [
        ("leaderboards", i, b.code, list[Gift](b.rewards)) for i, b in enumerate(leaderboards)
    ] + [("streaks", i, s.code, list[Gift](s.rewards)) for i, s in enumerate(streaks)]
    seen: set[tuple[str, str]] = set()
    for section, i, code, rewards in named:
        if (section, code) in seen:
            raise ValidationFailed.on((section, i, "code"), f"duplicate code {code!r}")
        seen.add((section, code))
        gifts += [((section, i, "rewards", j), g) for j, g in enumerate(rewards)]
    for i, board in enumerate(leaderboards):
        wanted = board.metric.challenge
        if wanted is not None:
            if wanted not in challenges:
                raise ValidationFailed.on(
                    ("leaderboards", i, "metric", "challenge"), "declare it in challenges"
                )
            if board.metric.goal >= len(challenges[wanted].goals):
                raise ValidationFailed.on(("leaderboards", i, "metric", "goal"), "no such goal")
    for i, streak in enumerate(streaks):
        for where, name in condition_fields(streak.when) if streak.when is not None else ():
            if not name.startswith("event."):
                raise ValidationFailed.on(("streaks", i, "when", *where), "fields here are event.*")
    for path, gift in gifts:
        if gift is not None and gift.badge is not None and gift.badge not in badges:
            raise ValidationFailed.on((*path, "badge"), "declare it in badges")
    if check_in is not None:
        codes = [s.code for s in check_in.stores]
        for i, code in enumerate(codes):
            if code in codes[:i]:
                raise ValidationFailed.on(("check_in", "stores", i, "code"), "duplicate store code")
