"""Member merges: one person's two records joined, and what moved, so that it can be undone.

``member_merges`` is one row per merge (who, when, why, the snapshots an unmerge needs);
``member_merge_items`` lists every row the merge re-pointed from the duplicate to the
survivor (identities, events, consent changes, badges, vouchers...), one row each, so that an
unmerge moves exactly those back with one statement per table.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, uuid_pk
from fidelia.models.member import Member

MERGE_STATUSES = ("merged", "unmerged")


class MemberMerge(Base):
    """The duplicate folded into the survivor; ``status`` ``unmerged`` once undone."""

    __tablename__ = "member_merges"
    __table_args__ = (
        Index("ix_member_merges_survivor_id_merged_at", "survivor_id", "merged_at"),
        Index("ix_member_merges_duplicate_id_survivor_id", "duplicate_id", "survivor_id"),
        CheckConstraint("status IN ('merged', 'unmerged')", name="status"),
        CheckConstraint("survivor_id <> duplicate_id", name="two_members"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    duplicate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    # api (an operator), enrolment or event (the programme's on_sure_match policy)
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    merged_at: Mapped[datetime]
    # What the unmerge needs that no item row says: the duplicate's status, the profile fields
    # and attributes it filled, consents it changed, engine/engagement/tier snapshots, postings.
    details: Mapped[dict[str, Any]]
    unmerged_at: Mapped[datetime | None]
    unmerged_by: Mapped[str | None] = mapped_column(String(200))
    # What the unmerge did: postings and the points it could not give back (spent meanwhile).
    unmerge_report: Mapped[dict[str, Any] | None]


class MemberMergeItem(Base):
    """One row a merge moved from the duplicate to the survivor (``kind``: the table)."""

    __tablename__ = "member_merge_items"

    merge_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("member_merges.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    item_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


# Duplicate suggestions and sure matches at enrolment look members up by birth date.
Index("ix_members_programme_id_birth_date", Member.programme_id, Member.birth_date)
