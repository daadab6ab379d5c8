"""Member-get-member: referral codes, the referrer-referee link, its rewards and fraud guards.

A code is derived from the member (stable, no lookup needed to show it) and stored the first
time it is asked for, so that an enrolment can find its referrer. The intake screens an
enrolment naming a code before writing anything (:func:`screen`: an unknown code refuses the
enrolment; a fraud guard only refuses the link, with a reason code), records the link and the
referee's welcome gift with the enrolment (:func:`after_event`), and qualifies the referral at
the referee's first qualifying purchase. Two purchases at once pay it once: the intake holds the
referee's member row, and the qualification is a conditional UPDATE (``status = 'enrolled'``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.engagement.referrals_schemas import (
    CodeOut,
    MemberReferralOut,
    ProgrammeReferralsOut,
    ReferralOut,
    ReferralSection,
    ReferralStats,
)
from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.attach import attached
from fidelia.kit.prepared import Prepared
from fidelia.ledger.returns import reverse
from fidelia.members import service as members
from fidelia.models import Event, LedgerTransaction, Member, MemberIdentity, Programme
from fidelia.models.engagement_plus import Referral, ReferralCode
from fidelia.rules.state import EngineEvent, basket_amount

if TYPE_CHECKING:
    from fidelia.engagement.plus import PlusRun

_GMAIL = {"gmail.com", "googlemail.com"}
CODE_LOC = ("properties", "referral_code")


def code_of(programme_id: uuid.UUID, member_id: uuid.UUID) -> str:
    """The member's referral code: 10 characters of base32, derived from the member."""
    digest = hashlib.sha256(f"referral:{programme_id}:{member_id}".encode()).digest()
    return base64.b32encode(digest).decode()[:10]


def ensure_code(session: Session, *, programme: Programme, member_id: uuid.UUID) -> str:
    """The member's code, stored so that enrolments can find it (a race stores it once)."""
    code = code_of(programme.id, member_id)
    found = session.get(ReferralCode, member_id)
    if found is None:
        try:
            with session.begin_nested():
                session.add(ReferralCode(member_id=member_id, programme_id=programme.id, code=code))
        except IntegrityError:
            pass  # a concurrent request stored the same code
    return code


def normalise_email(email: str) -> str:
    """Fold the aliases of one mailbox: ``+tag`` suffixes, and dots at Gmail."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _address(postal_code: str | None, attributes: Any) -> str | None:
    """The declared postal address (``attributes.address`` and the postal code), folded."""
    street = attributes.get("address") if isinstance(attributes, dict) else None
    if not isinstance(street, str) or not street.strip():
        return None
    return re.sub(r"[^a-z0-9]", "", f"{street}{postal_code or ''}".lower())


@dataclass(frozen=True)
class Screened:
    referrer_id: uuid.UUID
    code: str
    reason: str | None  # a refusal's reason code, None when the link is accepted


def screen(
    session: Session,
    *,
    programme: Programme,
    section: ReferralSection | None,
    code: str,
    identities: Sequence[tuple[str, str]],
    profile: dict[str, Any],
    member: Member | None,
) -> Screened:
    """Check an enrolment's referral code before anything is written.

    An unknown code (or a programme without a referral scheme) is a 422 naming
    ``properties.referral_code``: the enrolment is refused. The fraud guards refuse only the
    link, with a reason: ``self_referral``, ``already_referred``, ``not_new``,
    ``referrer_closed``. ``identities`` are the referee's (kind, value) pairs."""
    if section is None:
        raise ValidationFailed.on(CODE_LOC, "this programme has no referral scheme")
    wanted = code.strip().upper()
    row = session.execute(
        select(ReferralCode.member_id, Member.status, Member.postal_code, Member.attributes)
        .join(Member, Member.id == ReferralCode.member_id)
        .where(ReferralCode.programme_id == programme.id, ReferralCode.code == wanted)
    ).first()
    if row is None:
        raise ValidationFailed.on(CODE_LOC, "no member has this referral code")
    referrer_id, status, postal_code, attributes = row
    return Screened(
        referrer_id,
        wanted,
        _refusal(
            session,
            programme,
            referrer_id,
            status,
            (postal_code, attributes),
            identities,
            profile,
            member,
        ),
    )


def _refusal(
    session: Session,
    programme: Programme,
    referrer_id: uuid.UUID,
    status: str,
    referrer_address: tuple[str | None, Any],
    identities: Sequence[tuple[str, str]],
    profile: dict[str, Any],
    member: Member | None,
) -> str | None:
    if status == "closed":
        return "referrer_closed"
    if member is not None and member.id == referrer_id:
        return "self_referral"
    theirs = session.execute(
        select(MemberIdentity.kind, MemberIdentity.value).where(
            MemberIdentity.member_id == referrer_id, MemberIdentity.kind.in_(("email", "phone"))
        )
    ).all()
    folded = {(k, normalise_email(v) if k == "email" else v) for k, v in theirs}
    mine = {(k, normalise_email(v) if k == "email" else v) for k, v in identities}
    if folded & mine:
        return "self_referral"
    address = _address(profile.get("postal_code"), profile.get("attributes"))
    if address is not None and address == _address(*referrer_address):
        return "self_referral"
    if member is not None:
        known = session.scalar(
            select(Referral.id).where(
                Referral.programme_id == programme.id, Referral.referee_id == member.id
            )
        )
        if known is not None:
            return "already_referred"
        before = session.scalar(select(Event.id).where(Event.member_id == member.id).limit(1))
        if before is not None:
            return "not_new"
    return None


def write_codes(run: PlusRun) -> None:
    """The codes of the members the batch enrolled (one INSERT, existing ones left alone)."""
    if not run.new_codes:
        return
    dialect = run.session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(ReferralCode)
    run.session.execute(stmt.on_conflict_do_nothing(), run.new_codes)
    run.new_codes.clear()


def open_referrals(
    session: Session, programme: Programme, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Referral]:
    """The referrals of these referees that a purchase or a return can still move."""
    found: dict[uuid.UUID, Referral] = {}
    for start in range(0, len(member_ids), 500):
        params = {"programme_id": programme.id, "members": member_ids[start : start + 500]}
        for values in _OPEN.rows(session, params):
            referral = attached(session, Referral, values)
            found[referral.referee_id] = referral
    return found


_REFERRALS = Referral.__table__
_OPEN = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(_REFERRALS).where(
        _REFERRALS.c.programme_id == bindparam("programme_id"),
        _REFERRALS.c.referee_id.in_(bindparam("members", expanding=True)),
        _REFERRALS.c.status.in_(("enrolled", "qualified")),
    )
)


def after_event(
    run: PlusRun, member_id: uuid.UUID, event: EngineEvent, event_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The link at enrolment; qualification at a purchase; take-back at a return."""
    if event.type == "enrolment":
        run.new_codes.append(
            {"member_id": member_id, "programme_id": run.programme.id,
             "code": code_of(run.programme.id, member_id), "created_at": run.now}
        )  # fmt: skip
        if event.id in run.screened:
            return _link(run, member_id, event, event_id, run.screened.pop(event.id))
    referral = run.referrals.get(member_id)
    if referral is None:
        return []
    if event.purchase is not None and referral.status == "enrolled":
        return _qualify(run, referral, event, event_id)
    if event.type == "return" and referral.status == "qualified":
        return _take_back(run, referral, event, event_id)
    return []


def _link(
    run: PlusRun, member_id: uuid.UUID, event: EngineEvent, event_id: uuid.UUID, found: Screened
) -> list[dict[str, Any]]:
    from fidelia.engagement.plus import give

    section = run.defs.referral
    assert section is not None
    status = "refused" if found.reason else "enrolled"
    row = Referral(
        programme_id=run.programme.id,
        referrer_id=found.referrer_id,
        referee_id=member_id,
        code=found.code,
        status=status,
        reason=found.reason,
        enrolled_at=event.occurred_at,
        referrer_rewarded=False,
        rewards={},
    )
    row.referee = run.session.get_one(Member, member_id)
    run.session.add(row)
    base = {"referrer_id": str(found.referrer_id), "code": found.code}
    if found.reason is not None:
        return [{"kind": "referral_refused", "reason": found.reason, **base}]
    run.referrals[member_id] = row
    effect: dict[str, Any] = {"kind": "referral_enrolled", **base}
    if section.at_enrolment is not None:
        effect["referee_reward"] = given = give(
            run.session,
            programme=run.programme,
            member_id=member_id,
            gift=section.at_enrolment,
            key=f"referral:{member_id}:enrolment",
            source_type="referral",
            source_id=str(found.referrer_id),
            at=event.occurred_at,
            event_id=event_id,
            now=run.now,
        )
        row.rewards = {"at_enrolment": given}
    return [effect]


def _qualify(
    run: PlusRun, referral: Referral, event: EngineEvent, event_id: uuid.UUID
) -> list[dict[str, Any]]:
    from fidelia.engagement.plus import give

    section = run.defs.referral
    assert section is not None
    assert event.purchase is not None
    rule = section.first_purchase
    if rule is None or basket_amount(event.purchase) < rule.min_amount:
        return []
    if event.occurred_at > referral.enrolled_at + timedelta(days=rule.within_days):
        return []
    run.session.flush()
    moved = run.session.execute(
        update(Referral)
        .where(Referral.id == referral.id, Referral.status == "enrolled")
        .values(
            status="qualified",
            qualified_at=event.occurred_at,
            order_id=event.purchase.order_id,
            event_id=event_id,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        return []  # another transaction qualified it first
    run.session.refresh(referral)
    gifts: dict[str, Any] = dict(referral.rewards)
    common: dict[str, Any] = {
        "source_type": "referral",
        "at": event.occurred_at,
        "event_id": event_id,
    }
    if rule.referee is not None:
        gifts["referee"] = give(
            run.session,
            programme=run.programme,
            member_id=referral.referee_id,
            gift=rule.referee,
            key=f"referral:{referral.id}:referee",
            source_id=str(referral.id),
            now=run.now,
            **common,
        )
    if rule.referrer is not None:
        if _under_cap(run.session, section, referral, event.occurred_at, run.defs.tz):
            gifts["referrer"] = give(
                run.session,
                programme=run.programme,
                member_id=referral.referrer_id,
                gift=rule.referrer,
                key=f"referral:{referral.id}:referrer",
                source_id=str(referral.id),
                now=run.now,
                **common,
            )
            referral.referrer_rewarded = True
        else:
            gifts["referrer"] = {"status": "capped"}
    referral.rewards = gifts
    return [
        {
            "kind": "referral_qualified",
            "referral_id": str(referral.id),
            "referrer_id": str(referral.referrer_id),
            "referee_id": str(referral.referee_id),
            "order_id": event.purchase.order_id,
            "rewards": {k: v for k, v in gifts.items() if k != "at_enrolment"},
        }
    ]


def _under_cap(
    session: Session, section: ReferralSection, referral: Referral, at: datetime, tz: Any
) -> bool:
    """Whether the referrer may still be rewarded in this period. The referrer's code row is
    locked first, so that two referees qualifying at once count one after the other."""
    if section.cap is None:
        return True
    session.scalar(
        select(ReferralCode.member_id)
        .where(ReferralCode.member_id == referral.referrer_id)
        .with_for_update()
    )
    local = at.astimezone(tz)
    query = select(func.count()).where(
        Referral.programme_id == referral.programme_id,
        Referral.referrer_id == referral.referrer_id,
        Referral.referrer_rewarded.is_(True),
    )
    if section.cap.period != "ever":
        month = local.month if section.cap.period == "month" else 1
        start = local.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
        query = query.where(Referral.qualified_at >= start)
    return (session.scalar(query) or 0) < section.cap.rewards


def _take_back(
    run: PlusRun, referral: Referral, event: EngineEvent, event_id: uuid.UUID
) -> list[dict[str, Any]]:
    """A return of the qualifying order takes the qualification's points back."""
    section = run.defs.referral
    assert section is not None
    if not section.return_takes_back or event.properties.get("order_id") != referral.order_id:
        return []
    run.session.flush()
    keys = [f"referral:{referral.id}:referee", f"referral:{referral.id}:referrer"]
    txs = run.session.scalars(
        select(LedgerTransaction).where(
            LedgerTransaction.programme_id == run.programme.id,
            LedgerTransaction.idempotency_key.in_(keys),
        )
    ).all()
    for tx in txs:
        reverse(
            run.session,
            programme=run.programme,
            transaction_id=tx.id,
            idempotency_key=f"referral:{referral.id}:reversal:{tx.id}",
            reason="referral purchase returned",
            actor="referral",
            now=run.now,
        )
    referral.status = "reversed"
    run.referrals.pop(referral.referee_id, None)
    return [
        {
            "kind": "referral_reversed",
            "referral_id": str(referral.id),
            "transactions": [str(t.id) for t in txs],
            "return_event_id": str(event_id),
        }
    ]


def _stats(session: Session, programme: Programme, referrer_id: uuid.UUID | None) -> ReferralStats:
    """Counts by status (one grouped query), for one referrer or the whole programme."""
    query = select(
        Referral.status, Referral.reason, Referral.referrer_rewarded, func.count()
    ).where(Referral.programme_id == programme.id)
    if referrer_id is not None:
        query = query.where(Referral.referrer_id == referrer_id)
    rows = session.execute(
        query.group_by(Referral.status, Referral.reason, Referral.referrer_rewarded)
    ).all()
    refused: dict[str, int] = {}
    counts = {"invited": 0, "enrolled": 0, "qualified": 0, "rewarded": 0}
    for status, reason, rewarded, n in rows:
        counts["invited"] += n
        if status == "refused":
            refused[reason or "unknown"] = refused.get(reason or "unknown", 0) + n
            continue
        counts["enrolled"] += n
        if status in ("qualified", "reversed"):
            counts["qualified"] += n
        if rewarded:
            counts["rewarded"] += n
    return ReferralStats(**counts, refused=refused)


def _out(row: Referral) -> ReferralOut:
    return ReferralOut.model_validate(row, from_attributes=True)


def member_referral(
    session: Session, *, programme: Programme, member_id: uuid.UUID, create: bool = False
) -> MemberReferralOut:
    """The member's code and link, stats and referees. Members enrolled while the programme
    has a referral scheme have a code; ``create`` gives one to a member who has none."""
    from fidelia.engagement.plus import plus_for

    members.get(session, programme=programme, member_id=member_id)
    section = plus_for(session, programme).referral
    if section is None:
        raise NotFound("this programme has no referral scheme")
    if create:
        code: str | None = ensure_code(session, programme=programme, member_id=member_id)
    else:
        code = session.scalar(select(ReferralCode.code).where(ReferralCode.member_id == member_id))
    rows = session.scalars(
        select(Referral)
        .where(Referral.programme_id == programme.id, Referral.referrer_id == member_id)
        .order_by(Referral.enrolled_at.desc())
        .limit(200)
    ).all()
    referred_by = session.scalar(
        select(Referral.referrer_id).where(
            Referral.programme_id == programme.id,
            Referral.referee_id == member_id,
            Referral.status != "refused",
        )
    )
    return MemberReferralOut(
        member_id=member_id,
        code=code,
        link=section.link.replace("{code}", code) if code is not None else None,
        stats=_stats(session, programme, member_id),
        referred_by=referred_by,
        referrals=[_out(r) for r in rows],
    )


def programme_referrals(
    session: Session, *, programme: Programme, top: int = 10
) -> ProgrammeReferralsOut:
    """The programme's counts and its best referrers (by qualified referees)."""
    best = session.execute(
        select(Referral.referrer_id, func.count())
        .where(
            Referral.programme_id == programme.id,
            Referral.status.in_(("qualified", "reversed")),
        )
        .group_by(Referral.referrer_id)
        .order_by(func.count().desc(), Referral.referrer_id)
        .limit(top)
    ).all()
    return ProgrammeReferralsOut(
        stats=_stats(session, programme, None),
        top_referrers=[{"member_id": str(m), "qualified": n} for m, n in best],
    )


def list_referrals(
    session: Session,
    *,
    programme: Programme,
    status: str | None,
    limit: int,
    offset: int,
) -> list[ReferralOut]:
    query = select(Referral).where(Referral.programme_id == programme.id)
    if status is not None:
        query = query.where(Referral.status == status)
    query = query.order_by(Referral.enrolled_at.desc(), Referral.id).limit(limit).offset(offset)
    return [_out(r) for r in session.scalars(query)]


def lookup_code(session: Session, *, programme: Programme, code: str) -> CodeOut:
    """Whether ``code`` is a referral code here, with its owner's masked name (join pages)."""
    from fidelia.engagement.leaderboards import mask

    row = session.execute(
        select(Member.id, Member.first_name, Member.last_name, Member.status)
        .join(ReferralCode, ReferralCode.member_id == Member.id)
        .where(ReferralCode.programme_id == programme.id, ReferralCode.code == code.upper())
    ).first()
    if row is None or row.status == "closed":
        return CodeOut(code=code, valid=False, referrer=None)
    return CodeOut(
        code=code.upper(), valid=True, referrer=mask(row.first_name, row.last_name, row.id)
    )
