"""The programme's ``settings.merge.on_sure_match`` on the intake path.

The intake calls :func:`join_named` once per batch, in its own transaction, after it has
locked the members the batch names and before it loads any state, so that everything it does
next sees the joined member: when an event names identities of two members (or a member's id
and another member's identity), with ``on_sure_match: merge`` the newer member is merged into
the older one (enrolled first) and the event goes on with the survivor; with ``reject`` (the
default) nothing happens here and the intake answers its 409 as before. Members merged before
the batch (an id sent by a client that has not heard of the merge) are followed to their
survivor whatever the policy, as their identities are.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import FideliaError
from fidelia.kit.ids import uuid7
from fidelia.merges import duplicates, service
from fidelia.models import Member, Programme


def _lock(session: Session, programme: Programme, member_id: uuid.UUID) -> Member | None:
    return session.scalar(
        select(Member)
        .where(Member.programme_id == programme.id, Member.id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def follow_merged(
    session: Session, *, programme: Programme, members: MutableMapping[uuid.UUID, Member]
) -> dict[uuid.UUID, uuid.UUID]:
    """Add the survivors of the merged members among ``members`` (locked); merged id ->
    survivor id. A survivor is locked after its duplicate, out of key order: this happens
    only for a client still naming a merged member by id, or a merge that committed while
    the batch waited for the lock."""
    moved: dict[uuid.UUID, uuid.UUID] = {}
    for member_id, member in sorted(members.items()):
        if member.status != "merged":
            continue
        survivor = service.survivor_of(session, programme=programme, member_id=member_id)
        if survivor == member_id:
            continue
        if survivor not in members:
            found = _lock(session, programme, survivor)
            if found is None:
                continue
            members[survivor] = found
        moved[member_id] = survivor
    return moved


def join_named(
    session: Session,
    *,
    programme: Programme,
    groups: Iterable[set[uuid.UUID]],
    members: MutableMapping[uuid.UUID, Member],
    identities: MutableMapping[tuple[str, str, str], uuid.UUID],
    actor: str,
    source: str = "event",
) -> dict[uuid.UUID, uuid.UUID]:
    """Merge each group of members one event names together into its oldest member (the
    caller checked the policy is ``merge``); ``identities`` and the returned redirects (merged
    id -> survivor id) then lead to the survivor. A group that cannot be merged (a closed
    member, a duplicate in debt) is left alone: the event gets its 409."""
    moved: dict[uuid.UUID, uuid.UUID] = {}
    for group in groups:
        owners = {moved.get(m, m) for m in group}
        if len(owners) < 2 or not owners <= members.keys():
            continue
        oldest, *others = sorted(owners, key=lambda m: (members[m].enrolled_at, m))
        try:
            with session.begin_nested():
                for other in others:
                    service.merge(
                        session,
                        programme=programme,
                        survivor_id=oldest,
                        duplicate_id=other,
                        actor=actor,
                        reason="identities of two members in one event",
                        source=source,
                    )
        except FideliaError:
            continue
        for other in others:
            moved[other] = oldest
    if moved:
        for triple, member_id in identities.items():
            identities[triple] = moved.get(member_id, member_id)
    return moved


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def sure_match_of_profile(
    session: Session, *, programme: Programme, profile: Mapping[str, Any]
) -> uuid.UUID | None:
    """The open member an enrolment's ``profile`` is a sure match of (``duplicates.sure_match``
    on the profile as it would be enrolled), or None. The caller checked the policy is
    ``merge``: the enrolment is then that member's, as an already-enrolled member's profile
    update, and no second member is created."""
    attributes = profile.get("attributes")
    probe = Member(
        id=uuid7(),
        programme_id=programme.id,
        first_name=profile.get("first_name"),
        last_name=profile.get("last_name"),
        birth_date=_day(profile.get("birth_date")),
        postal_code=profile.get("postal_code"),
        attributes=attributes if isinstance(attributes, dict) else {},
    )
    pair = duplicates.sure_match(session, programme=programme, member=probe)
    if pair is None:
        return None
    match = pair.first if pair.second == probe.id else pair.second
    found = session.get(Member, match)
    return match if found is not None and found.status not in service.FINAL else None
