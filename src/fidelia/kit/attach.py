"""Rows read by a prepared statement made persistent ORM objects without the ORM's loader.

The intake reads a group's state rows (tiers, engagement, streaks, referrals, subscriptions,
members) with :mod:`fidelia.kit.prepared` and hands its callers the mapped objects they expect,
so that a change is flushed as an UPDATE. Building them through the loader cost more than the
query; ``make_transient_to_detached`` then ``session.add`` cost four times the loader (the add
walks the relationships' cascades), for each of the 16 to 48 rows of a group (issue 18).
:func:`attached` sets what the loader sets: the object's columns, its identity key, its
session, its place in the identity map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value

_Row = TypeVar("_Row", bound=DeclarativeBase)
_KEYS: dict[type[Any], tuple[int, ...]] = {}  # the primary key's positions in a row


def attached(session: Session, model: type[_Row], values: Sequence[Any]) -> _Row:
    """The row (all of its table's columns, in the table's order) as a persistent object of
    ``session``, so that later changes are flushed as an UPDATE; the object the session holds
    already if it does (its expired columns filled from the row, as the loader does). The
    model's attributes must be named as its columns."""
    table = model.__table__
    names = table.c.keys()
    keys = _KEYS.get(model)
    if keys is None:
        keys = _KEYS[model] = tuple(i for i, c in enumerate(table.c) if c.primary_key)
    key = (model, tuple(values[i] for i in keys), None)
    held = session.identity_map.get(key)
    if held is not None:
        for name, value in zip(names, values, strict=True):
            if name not in held.__dict__:
                set_committed_value(held, name, value)
        return held
    found: _Row = model.__mapper__.class_manager.new_instance()
    found.__dict__.update(zip(names, values, strict=True))
    state = instance_state(found)
    state.key = key
    state.session_id = session.hash_key
    session.identity_map.add(state)
    return found
