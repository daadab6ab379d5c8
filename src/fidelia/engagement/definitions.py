"""A programme's badges and challenges, read from its live document (cached per version).

Definitions are not copied into tables: versions never change, so a cache keyed by
(programme, version) is always right and there is nothing to resynchronise on apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.engagement.schemas import BadgeDef, ChallengeDef
from fidelia.kit.conditions import Predicate, compile_condition, condition_fields
from fidelia.models import Programme


@dataclass(frozen=True)
class Definitions:
    badges: dict[str, BadgeDef] = field(default_factory=dict)
    challenges: dict[str, ChallengeDef] = field(default_factory=dict)
    tests: dict[int, Predicate] = field(default_factory=dict)  # id(definition) -> predicate
    # The fields the conditions read: the intake loads ``member.segments`` and ``traits.*``
    # for the batch only when one is named here.
    reads: frozenset[str] = frozenset()

    def passes(self, definition: Any, ctx: dict[str, Any]) -> bool:
        """Whether the definition's ``when`` holds for the event context."""
        test = self.tests.get(id(definition))
        return test is None or test(ctx)

    @property
    def empty(self) -> bool:
        return not self.badges and not self.challenges


EMPTY = Definitions()


def definitions_for(session: Session, programme: Programme) -> Definitions:
    """The badges and challenges of the programme's live version."""
    if not programme.live_version:
        return EMPTY
    tz = ZoneInfo(programme.timezone)
    return versions.section(session, programme, "engagement", lambda raw: build(dict(raw), tz))


def build(document: dict[str, Any], tz: ZoneInfo) -> Definitions:
    """Parse and compile the sections of a stored document."""
    badges = {b.code: b for b in map(BadgeDef.model_validate, document.get("badges", []))}
    challenges = {
        c.code: c for c in map(ChallengeDef.model_validate, document.get("challenges", []))
    }
    tests: dict[int, Predicate] = {}
    reads: set[str] = set()
    whens = [(id(b), b.when) for b in badges.values()]
    whens += [(id(g), g.when) for c in challenges.values() for g in c.goals]
    for key, when in whens:
        if when is not None:
            tests[key] = compile_condition(when, tz=tz)
            reads.update(path for _, path in condition_fields(when))
    return Definitions(badges, challenges, tests, frozenset(reads))
