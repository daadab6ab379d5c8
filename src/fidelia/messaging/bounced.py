"""Bounced addresses of a programme: list them (by address, paged, filtered by a part of the
address) and clear one, so the address can be written to again (an operator who knows the
mailbox works again). Clearing removes the row only: the messages keep their ``bounced``
status and log; the caller audits the change."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import NotFound
from fidelia.models import Programme
from fidelia.models.messaging import BouncedAddress


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_bounced(
    session: Session,
    *,
    programme: Programme,
    address: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[list[BouncedAddress], str | None]:
    """Up to ``limit`` bounced addresses in address order after ``after``, those containing
    ``address`` (case-insensitive) when given; and the address to pass as ``after`` for the
    next page (None: the last page)."""
    query = select(BouncedAddress).where(BouncedAddress.programme_id == programme.id)
    if address:
        pattern = f"%{_escaped(address.lower())}%"
        query = query.where(BouncedAddress.address.ilike(pattern, escape="\\"))
    if after is not None:
        query = query.where(BouncedAddress.address > after)
    rows = list(session.scalars(query.order_by(BouncedAddress.address).limit(limit + 1)))
    more = rows[limit - 1].address if len(rows) > limit else None
    return rows[:limit], more


def clear(session: Session, *, programme: Programme, address: str) -> BouncedAddress:
    """Remove ``address`` from the programme's bounced addresses (404 if it is not there);
    returns the row as it was."""
    found = session.get(BouncedAddress, (programme.id, address), with_for_update=True)
    if found is None:
        raise NotFound(f"{address!r} is not a bounced address of this programme")
    session.delete(found)
    session.flush()
    return found
