from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, NotFound
from fidelia.ledger.wallets import ensure_default_wallets
from fidelia.models import Programme
from fidelia.programmes.schemas import ProgrammeCreate, ProgrammeSettings, ProgrammeUpdate


def create(session: Session, *, data: ProgrammeCreate) -> Programme:
    if session.scalar(select(Programme.id).where(Programme.slug == data.slug)) is not None:
        raise Conflict(f"a programme with slug {data.slug!r} exists already")
    programme = Programme(
        slug=data.slug,
        name=data.name,
        currency=data.currency,
        timezone=data.timezone,
        locale=data.locale,
        country=data.country,
        settings=data.settings.model_dump(),
    )
    session.add(programme)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same slug
        raise Conflict(f"a programme with slug {data.slug!r} exists already") from exc
    ensure_default_wallets(session, programme=programme)
    return programme


def get(session: Session, *, programme_id: uuid.UUID) -> Programme:
    programme = session.get(Programme, programme_id)
    if programme is None:
        raise NotFound(f"programme {programme_id} does not exist")
    return programme


def get_by_slug(session: Session, *, slug: str) -> Programme:
    programme = session.scalar(select(Programme).where(Programme.slug == slug))
    if programme is None:
        raise NotFound(f"programme {slug!r} does not exist")
    return programme


def list_all(session: Session) -> list[Programme]:
    return list(session.scalars(select(Programme).order_by(Programme.created_at)))


def update(session: Session, *, programme: Programme, data: ProgrammeUpdate) -> Programme:
    if data.name is not None:
        programme.name = data.name
    if data.locale is not None:
        programme.locale = data.locale
    if data.settings is not None:
        programme.settings = data.settings.model_dump()
    session.flush()
    return programme


def settings_of(programme: Programme) -> ProgrammeSettings:
    return ProgrammeSettings.model_validate(programme.settings)
