"""The live document's ``plans``, ``till`` and ``offers`` sections, parsed once per version
(versions never change), as tiers and engagement read theirs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.models import Programme
from fidelia.plans.schemas import PlanDef, TillSection
from fidelia.tiers.schemas import Perk, TiersSection


@dataclass(frozen=True)
class Sections:
    """What this domain and the offers domain read of one document version."""

    version: int
    plans: dict[str, PlanDef] = field(default_factory=dict)
    till: TillSection | None = None
    tier_perks: dict[str, list[Perk]] = field(default_factory=dict)
    tier_ranks: dict[str, int] = field(default_factory=dict)
    raw_offers: tuple[dict[str, Any], ...] = ()


def sections_for(session: Session, programme: Programme) -> Sections:
    """The live version's sections (empty before the first document)."""
    version = programme.live_version
    return versions.section(session, programme, "plans", lambda raw: _parse(raw, version))


def _parse(raw: Mapping[str, Any], version: int) -> Sections:
    tiers = TiersSection.model_validate(raw["tiers"]) if raw.get("tiers") else None
    return Sections(
        version=version,
        plans={p["code"]: PlanDef.model_validate(p) for p in raw.get("plans") or []},
        till=TillSection.model_validate(raw["till"]) if raw.get("till") else None,
        tier_perks={lv.code: list(lv.perks) for lv in tiers.levels} if tiers else {},
        tier_ranks={lv.code: i for i, lv in enumerate(tiers.levels)} if tiers else {},
        raw_offers=tuple(raw.get("offers") or ()),
    )
