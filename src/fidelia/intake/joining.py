"""What events change in the member record: enrolment, identities, consents, status history.

Intake's batch keeps one :class:`MemberChanges`. An ``enrolment`` creates the member (active,
with its profile, identities and consents) or activates a prospect; for a member already
enrolled it only fills the profile's gaps, links new identities and records consents (the batch
runs no rule on it). Any other event of an unknown identity creates a prospect (or what the
import says). Identities and status changes are written in one executemany each, after the
members, so a bulk import does not pay a round trip per row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, FieldError, ValidationFailed
from fidelia.events.schemas import Enrolment, EventIn, ExternalId
from fidelia.kit.bulk import insert_rows
from fidelia.kit.ids import uuid7
from fidelia.members import service as members
from fidelia.members.service import IdentityKey
from fidelia.models import Base, Consent, Member, Programme


class AlreadyEnrolled(Conflict):
    """An enrolment for a member who is already enrolled, where the caller wants new members
    only (``POST /members``, the members import)."""

    code = "already_enrolled"


def more_keys(programme: Programme, event: EventIn) -> list[IdentityKey]:
    """The further external ids an enrolment gives (``properties.external_ids``); if they are
    malformed, the check of the properties refuses the event later."""
    raw = event.properties.get("external_ids") if event.type == "enrolment" else None
    if not raw or not isinstance(raw, list):
        return []
    try:
        ids = [ExternalId.model_validate(x) for x in raw]
    except ValidationError:
        return []
    return members.identity_keys(
        programme,
        external=[(x.namespace, x.value) for x in ids],
        loc=("properties",),
        external_field="external_ids",
    )


@dataclass
class MemberChanges:
    """The member rows a batch of events adds or changes; ``identities`` is the batch's map of
    identities to members, kept up to date as members are created or linked."""

    session: Session
    programme: Programme
    now: datetime
    actor: str
    identities: dict[tuple[str, str, str], uuid.UUID]
    created: set[uuid.UUID] = field(default_factory=set)
    new_identities: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    new_consents: dict[tuple[uuid.UUID, str], Consent] = field(default_factory=dict)

    def check_enrolment(
        self,
        keys: list[IdentityKey],
        more: list[IdentityKey],
        member: Member | None,
        *,
        already: bool,
        refuse: bool,
    ) -> None:
        """New members only if ``refuse``; the further external ids (``more``) are given once
        and belong to nobody else."""
        if already and refuse:
            assert member is not None
            mine = [k for k in keys if self.identities.get(k.triple) == member.id]
            raise AlreadyEnrolled(
                f"member {member.id} is already enrolled",
                fields=[FieldError(k.field, "already enrolled") for k in mine]
                or [FieldError(("member", "id"), "already enrolled")],
            )
        seen = {k.triple for k in keys}
        for key in more:
            if key.triple in seen:
                raise ValidationFailed.on(key.field, "the same identity is given twice")
            seen.add(key.triple)
            owner = self.identities.get(key.triple)
            if owner is not None and (member is None or owner != member.id):
                raise Conflict(
                    "identity already belongs to another member: "
                    + ".".join(str(p) for p in key.field),
                    fields=[FieldError(key.field, f"{key.kind} {key.value!r} is taken")],
                )

    def create(
        self,
        event: EventIn,
        keys: list[IdentityKey],
        member_id: uuid.UUID,
        event_id: uuid.UUID,
        *,
        status: str,
        joining: Enrolment | None,
    ) -> Member:
        """A new member with ``keys``; ``joining``: the event is their enrolment (its profile
        and consents are theirs)."""
        # filled as the ORM's loader fills an object, then added as new: the constructor's
        # attribute events cost a tenth of a member's creation in a bulk import (issue 18)
        member: Member = Member.__mapper__.class_manager.new_instance()
        member.__dict__.update(
            id=member_id,
            programme_id=self.programme.id,
            status=status,
            enrolment_channel=event.channel or "import",
            enrolment_store=event.store,
            enrolled_at=event.occurred_at,
            attributes={},
        )
        if joining is not None:
            members.apply_profile(member, joining.profile)
        self.session.add(member)
        self.created.add(member_id)
        reason = "enrolment" if joining is not None else f"first event ({event.type})"
        self._status(member, status, reason, event, event_id, first=True)
        self.new_identities.extend(
            {
                "id": uuid7(),
                "programme_id": self.programme.id,
                "member_id": member_id,
                "kind": key.kind,
                "namespace": key.namespace,
                "value": key.value,
                "created_at": self.now,
            }
            for key in keys
        )
        for key in keys:
            self.identities[key.triple] = member_id
        for consent in joining.consents if joining is not None else ():
            self.consent(member, event, consent.channel, consent.granted, consent.source)
        return member

    def join(
        self,
        event: EventIn,
        keys: list[IdentityKey],
        member: Member,
        event_id: uuid.UUID,
        joining: Enrolment,
        *,
        already: bool,
    ) -> None:
        """The enrolment of a known member: a prospect becomes active and takes the profile;
        a member already enrolled only has the profile's gaps filled. Both get the event's new
        identities and consents."""
        if member.status == "prospect":
            self._status(member, "active", "enrolment", event, event_id)
            member.status = "active"
        members.apply_profile(member, joining.profile, fill_gaps=already)
        self.link_identities(keys, member)
        for consent in joining.consents:
            self.consent(member, event, consent.channel, consent.granted, consent.source)

    def link_identities(self, keys: list[IdentityKey], member: Member) -> None:
        """An enrolment or profile update that names a known member with identities nobody has
        yet adds them to that member (a store customer who signs up on the web with her card)."""
        new = [k for k in keys if k.triple not in self.identities]
        if new:
            self.session.add_all(members.identity_rows(self.programme, member.id, new))
            for key in new:
                self.identities[key.triple] = member.id

    def consent(
        self, member: Member, event: EventIn, channel: str, granted: bool, source: str | None
    ) -> None:
        at, source = event.occurred_at, source or f"event:{event.channel or 'api'}"
        programme, session = self.programme, self.session
        if member.id not in self.created:
            members.set_consent(
                session,
                programme=programme,
                member=member,
                channel=channel,
                granted=granted,
                at=at,
                source=source,
            )
            return
        # A member this batch enrolled has no consent stored yet: no query, no flush (a bulk
        # import enrols a thousand at a time).
        key = (member.id, channel)
        self.new_consents[key] = members.add_consent(
            session,
            programme=programme,
            member=member,
            current=self.new_consents.get(key),
            channel=channel,
            granted=granted,
            at=at,
            source=source,
        )

    def write(self) -> None:
        """The new identities and status changes, one executemany each (members are flushed)."""
        if self.new_identities:
            table = Base.metadata.tables["member_identities"]
            insert_rows(self.session, table, self.new_identities)
        if self.status_changes:
            table = Base.metadata.tables["member_status_changes"]
            insert_rows(self.session, table, self.status_changes)

    def _status(
        self,
        member: Member,
        to: str,
        reason: str,
        event: EventIn,
        event_id: uuid.UUID,
        *,
        first: bool = False,
    ) -> None:
        self.status_changes.append(
            members.status_change(
                member,
                to=to,
                reason=reason,
                at=event.occurred_at,
                actor=self.actor,
                event_id=event_id,
                first=first,
            )
        )
