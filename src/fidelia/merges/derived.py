"""After a merge or an unmerge: both members' traits and segment memberships, recomputed in
the same transaction.

Design note
-----------
A merge moves the duplicate's events to the survivor (and an unmerge moves them back), so
what is derived from the events is stale for both members. :func:`recompute` rebuilds their
``member_traits`` rows from their events with the traits rebuild's own statement
(``traits.rebuild.recompute_members``: one chunk per member, ``lo = hi = member``), keeping
the programme-wide scores (RFM, last redemption) the daily refresh owns, then re-evaluates
every segment of the programme for the two members (``segments.live.evaluate_members``, cause
``merge``): one SELECT, writes only for who enters or leaves. Two members, a handful of
statements each: not a hot path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from fidelia.models import Programme
from fidelia.segments import live, summaries
from fidelia.segments import service as segments
from fidelia.traits import rebuild


def recompute(
    session: Session, *, programme: Programme, member_ids: Iterable[uuid.UUID], now: datetime
) -> None:
    """Rebuild the members' traits from their events, then re-evaluate their segments."""
    ids = sorted(set(member_ids))
    summaries.rebuild(session, programme_id=programme.id, member_ids=ids)
    rebuild.recompute_members(session, programme=programme, member_ids=ids, now=now)
    section = segments.section_for(session, programme)
    if section is None or not section.definitions:
        return
    live.evaluate_members(
        session,
        programme=programme,
        segments=section.definitions,
        catalogue=segments.catalogue_for(session, programme),
        member_ids=ids,
        now=now,
        cause="merge",
    )
