"""Duplicate suggestions: pairs of members that are likely one person, with why and a score.

Design note
-----------
Identities are unique per programme, so two members never share an identity of the same
kind; a person's second record shows in other ways. Two families of reasons:

- contact points: an email or a phone one member holds as an identity (or an external id
  that is an email) and another has in its attributes (``email``, ``phone``, ``mobile``...),
  normalised as identities are (emails lower-cased, phones E.164 in the programme's country);
- the profile: same first name, last name, birth date and postal code, normalised (case,
  accents, spaces and punctuation ignored); or the name and birth date only, a weaker hint.

Each reason has a weight; a pair's score is ``1 - prod(1 - weight)`` over its reasons, and a
score of at least :data:`SURE` is a sure match (what ``settings.merge.on_sure_match`` acts
on). Candidates are found set-based: the profile family groups in SQL on the birth date first
(an index), so only members who share one are read and their names folded. A contact point
shared by more than :data:`CROWD` members (a shop's address typed for walk-in customers) says
nothing about a person and is ignored. Closed and merged members are never suggested. The older
member (enrolled first) comes first: it is the suggested survivor.
"""

from __future__ import annotations

import itertools
import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from fidelia.errors import FideliaError, ValidationFailed
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.members.identities import EMAIL, EXTERNAL, PHONE, normalise_email, normalise_phone
from fidelia.models import Member, MemberIdentity, Programme

WEIGHTS = {
    "same_email": 0.95,
    "same_phone": 0.9,
    "same_name_birth_date_postal_code": 0.9,
    "same_name_birth_date": 0.6,
}
SURE = 0.9
CROWD = 20
OPEN = ("prospect", "active", "suspended")
EMAIL_KEYS = ("email", "email_address", "mail")
PHONE_KEYS = ("phone", "mobile", "phone_number", "telephone")


@dataclass
class Pair:
    """Two members likely to be one person: ``first`` enrolled first (the survivor to keep)."""

    first: uuid.UUID
    second: uuid.UUID
    reasons: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        left = 1.0
        for reason in self.reasons:
            left *= 1 - WEIGHTS[reason]
        return round(1 - left, 4)


@lru_cache(maxsize=65536)
def fold(text: str | None) -> str:
    """Case, accents, spaces and punctuation ignored: ``"Le Moël-Dupré"`` -> ``"lemoeldupre"``."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


class _Pairs:
    def __init__(self, enrolled: dict[uuid.UUID, datetime]) -> None:
        self.enrolled = enrolled
        self.found: dict[tuple[uuid.UUID, uuid.UUID], Pair] = {}

    def group(self, members: set[uuid.UUID], reason: str, *, instead: str = "") -> None:
        members = {m for m in members if m in self.enrolled}
        if len(members) < 2 or len(members) > CROWD:
            return
        ordered = sorted(members, key=lambda m: (self.enrolled[m], m))
        for a, b in itertools.combinations(ordered, 2):
            pair = self.found.setdefault((a, b), Pair(a, b))
            if instead in pair.reasons:
                pair.reasons.remove(instead)
            if reason not in pair.reasons:
                pair.reasons.append(reason)


def _open_members(
    session: Session, programme: Programme, ids: set[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    found: dict[uuid.UUID, datetime] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        query = select(Member.id, Member.enrolled_at).where(
            Member.programme_id == programme.id,
            Member.id.in_(ordered[start : start + 1000]),
            Member.status.in_(OPEN),
        )
        found.update({m: at for m, at in session.execute(query)})
    return found


def _contacts(
    session: Session, programme: Programme, enrolled: dict[uuid.UUID, datetime]
) -> dict[tuple[str, str], set[uuid.UUID]]:
    """Normalised email and phone -> the open members who hold it (identity or attribute);
    fills ``enrolled`` with the enrolment instant of each member read."""
    holders: dict[tuple[str, str], set[uuid.UUID]] = defaultdict(set)
    identities = (
        select(
            MemberIdentity.kind, MemberIdentity.value, MemberIdentity.member_id, Member.enrolled_at
        )
        .join(Member, Member.id == MemberIdentity.member_id)
        .where(
            MemberIdentity.programme_id == programme.id,
            MemberIdentity.kind.in_([EMAIL, PHONE, EXTERNAL]),
            Member.status.in_(OPEN),
        )
    )
    for kind, value, member_id, at in session.execute(identities):
        enrolled[member_id] = at
        if kind == EXTERNAL:
            email = _email(value)
            if email:
                holders[(EMAIL, email)].add(member_id)
        else:
            holders[(kind, value)].add(member_id)
    keys = (*EMAIL_KEYS, *PHONE_KEYS)
    with_attributes = select(Member.id, Member.attributes, Member.enrolled_at).where(
        Member.programme_id == programme.id,
        Member.status.in_(OPEN),
        # filtered by the database: only members with one of these keys are read and parsed
        or_(*(Member.attributes[key].as_string().is_not(None) for key in keys)),
    )
    for member_id, attributes, at in session.execute(
        with_attributes.execution_options(yield_per=2000)
    ):
        enrolled[member_id] = at
        for key in EMAIL_KEYS:
            email = _email(attributes.get(key)) if attributes else None
            if email:
                holders[(EMAIL, email)].add(member_id)
        for key in PHONE_KEYS:
            phone = _phone(attributes.get(key), programme.country) if attributes else None
            if phone:
                holders[(PHONE, phone)].add(member_id)
    return holders


def _email(value: Any) -> str | None:
    if not isinstance(value, str) or "@" not in value or len(value) > 320:
        return None
    try:
        return normalise_email(value.strip())
    except FideliaError:
        return None


def _phone(value: Any, country: str) -> str | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return normalise_phone(value, region=country)
    except FideliaError:
        return None


def _profiles(session: Session, programme: Programme) -> list[tuple[Any, ...]]:
    """Open members with a last name who share their birth date with another open member
    (names are folded in Python: SQL cannot ignore accents on both engines). One scan: a
    window count per birth date (a join on a grouped subquery made SQLite's planner probe the
    whole table once per date)."""
    ranked = (
        select(
            Member.id,
            Member.first_name,
            Member.last_name,
            Member.birth_date,
            Member.postal_code,
            Member.enrolled_at,
            func.count().over(partition_by=Member.birth_date).label("born_that_day"),
        )
        .where(
            Member.programme_id == programme.id,
            Member.status.in_(OPEN),
            Member.last_name.is_not(None),
            Member.birth_date.is_not(None),
        )
        .subquery()
    )
    query = select(*(c for c in ranked.c if c.name != "born_that_day")).where(
        ranked.c.born_that_day > 1
    )
    return [tuple(row) for row in session.execute(query)]


def find_pairs(session: Session, *, programme: Programme) -> list[Pair]:
    """Every likely pair of the programme, best score first."""
    enrolled: dict[uuid.UUID, datetime] = {}
    contacts = _contacts(session, programme, enrolled)
    profiles = _profiles(session, programme)
    enrolled.update((row[0], row[5]) for row in profiles)
    pairs = _Pairs(enrolled)
    for (kind, _), members in contacts.items():
        pairs.group(members, "same_email" if kind == EMAIL else "same_phone")
    by_name: dict[tuple[str, str, Any], set[uuid.UUID]] = defaultdict(set)
    by_place: dict[tuple[str, str, Any, str], set[uuid.UUID]] = defaultdict(set)
    for member_id, first, last, born, postal, _ in profiles:
        name = (fold(first), fold(last), born)
        if not name[0] or not name[1]:
            continue
        by_name[name].add(member_id)
        place = fold(postal)
        if place:
            by_place[(*name, place)].add(member_id)
    for members in by_name.values():
        pairs.group(members, "same_name_birth_date")
    for members in by_place.values():
        pairs.group(members, "same_name_birth_date_postal_code", instead="same_name_birth_date")
    order = list(WEIGHTS)
    for pair in pairs.found.values():
        pair.reasons.sort(key=order.index)
    return sorted(pairs.found.values(), key=lambda p: (-p.score, p.first, p.second))


def page_of_pairs(
    session: Session,
    *,
    programme: Programme,
    min_score: float = 0.0,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Pair], str | None]:
    """One page of :func:`find_pairs` (score at least ``min_score``) after ``cursor``."""
    found = [p for p in find_pairs(session, programme=programme) if p.score >= min_score]
    if cursor is not None:
        try:
            score, first, second = decode_cursor(cursor)
            if type(score) not in (int, float) or not 0 <= score <= 1:  # a score this API gave
                raise ValueError(score)
            after = (-float(score), uuid.UUID(str(first)), uuid.UUID(str(second)))
        except (ValueError, TypeError) as exc:
            raise ValidationFailed.on(("query", "cursor"), "not a cursor of this list") from exc
        found = [p for p in found if (-p.score, p.first, p.second) > after]
    page = found[:limit]
    more = len(found) > limit
    last = page[-1] if page else None
    token = (
        encode_cursor([last.score, str(last.first), str(last.second)]) if more and last else None
    )
    return page, token


def sure_match(session: Session, *, programme: Programme, member: Member) -> Pair | None:
    """The best sure match (score at least :data:`SURE`) of one member, found with index
    probes only (for the intake): its attributes' emails and phones held as identities, and
    members born the same day with the same name and postal code. (An identity of this member
    written in another member's attributes is found by :func:`find_pairs` only: it needs a
    scan.)"""
    reasons: dict[uuid.UUID, list[str]] = defaultdict(list)
    attributes = member.attributes or {}
    wanted = [(EMAIL, e) for k in EMAIL_KEYS if (e := _email(attributes.get(k)))]
    wanted += [
        (PHONE, p) for k in PHONE_KEYS if (p := _phone(attributes.get(k), programme.country))
    ]
    for kind, value in wanted:
        holder = session.scalar(
            select(MemberIdentity.member_id).where(
                MemberIdentity.programme_id == programme.id,
                MemberIdentity.kind == kind,
                MemberIdentity.namespace == "",
                MemberIdentity.value == value,
            )
        )
        if holder is not None and holder != member.id:
            reasons[holder].append("same_email" if kind == EMAIL else "same_phone")
    if member.birth_date is not None and fold(member.last_name) and fold(member.postal_code):
        me = (fold(member.first_name), fold(member.last_name), fold(member.postal_code))
        born = select(Member.id, Member.first_name, Member.last_name, Member.postal_code).where(
            Member.programme_id == programme.id,
            Member.birth_date == member.birth_date,
            Member.id != member.id,
        )
        for other, first, last, postal in session.execute(born):
            if (fold(first), fold(last), fold(postal)) == me:
                reasons[other].append("same_name_birth_date_postal_code")
    enrolled = _open_members(session, programme, set(reasons))
    best: Pair | None = None
    for other in sorted(enrolled):
        pair = Pair(other, member.id, sorted(set(reasons[other])))
        if pair.score >= SURE and (best is None or pair.score > best.score):
            best = pair
    return best
