"""Programme-as-code: the whole programme as one versioned document (YAML or JSON).

A document holds the programme's settings, its wallets, its earning rules, its status tiers,
badges and challenges, its voucher pools and rewards (later: segments, scenarios). The tiers and
engagement domains read their sections from the live version (cached per immutable version)
rather than copying them into tables; applying a document with tiers schedules the daily
requalification job; pools and rewards are created or updated by code. Applying one
validates it completely (every error with its path), shows a readable diff against the live
version, and stores it as a new immutable version that becomes live. Rule versions are kept by
the system: a rule whose content changed gets its version bumped, so every ledger entry names
the exact rule text that produced it.
"""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.engagement.checkins_schemas import CheckInSection
from fidelia.engagement.leaderboards import schedule_close
from fidelia.engagement.leaderboards_schemas import LeaderboardDef
from fidelia.engagement.plus import check_sections
from fidelia.engagement.referrals_schemas import ReferralSection
from fidelia.engagement.schemas import BadgeDef, ChallengeDef
from fidelia.engagement.streaks_schemas import StreakDef
from fidelia.errors import FieldError, NotFound, ValidationFailed, error_message
from fidelia.kit.bounds import LocaleTag, ShortText, find_nul
from fidelia.kit.clock import utcnow
from fidelia.kit.conditions import condition_fields, parse_condition
from fidelia.ledger.schemas import WalletIn
from fidelia.ledger.wallets import declare_wallet, default_wallets
from fidelia.messaging.schemas import MessagingSection
from fidelia.models import Programme, ProgrammeVersion
from fidelia.offers.schemas import OfferDef
from fidelia.offers.schemas import check_section as check_offers
from fidelia.plans import exclusive  # noqa: F401  (registers the subscribers-only gate)
from fidelia.plans.schemas import PlanDef, TillSection
from fidelia.plans.schemas import check_section as check_plans
from fidelia.programmes import catalogue
from fidelia.programmes.portal_section import PortalSection
from fidelia.programmes.schemas import ProgrammeSettings, validate_locale
from fidelia.rewards import eligibility
from fidelia.rewards.schemas import PoolIn, RewardIn
from fidelia.rules.schemas import (
    EarningRule,
    ProgrammeRules,
    Strategy,
    load_programme,
    trait_fields,
)
from fidelia.scenarios import jobs as scenario_jobs
from fidelia.scenarios import service as scenario_service
from fidelia.scenarios.schemas import ScenariosSection
from fidelia.segments import jobs as segment_jobs
from fidelia.segments import service as segments
from fidelia.segments.schemas import SegmentsSection
from fidelia.tiers.schemas import TiersSection
from fidelia.traits import service as traits_service
from fidelia.traits.fields import resolve as resolve_trait
from fidelia.traits.schemas import TraitsSection
from fidelia.transfers.schemas import TransfersSection


class ProgrammeDocument(BaseModel):
    """The programme as a marketer writes it. Wallets default to points, cashback, status."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    locale: LocaleTag | None = None
    settings: ProgrammeSettings = Field(default_factory=ProgrammeSettings)
    wallets: list[WalletIn] | None = Field(default=None, max_length=20)
    exclusive_groups: dict[ShortText, Strategy] = Field(default_factory=dict, max_length=50)
    rules: list[EarningRule] = Field(default_factory=list, max_length=500)
    tiers: TiersSection | None = None
    traits: TraitsSection | None = None
    segments: SegmentsSection | None = None
    messaging: MessagingSection | None = None
    scenarios: ScenariosSection | None = None
    portal: PortalSection | None = None
    badges: list[BadgeDef] = Field(default_factory=list, max_length=200)
    challenges: list[ChallengeDef] = Field(default_factory=list, max_length=200)
    referral: ReferralSection | None = None
    leaderboards: list[LeaderboardDef] = Field(default_factory=list, max_length=50)
    streaks: list[StreakDef] = Field(default_factory=list, max_length=50)
    check_in: CheckInSection | None = None
    voucher_pools: list[PoolIn] = Field(default_factory=list, max_length=200)
    rewards: list[RewardIn] = Field(default_factory=list, max_length=500)
    offers: list[OfferDef] = Field(default_factory=list, max_length=200)
    plans: list[PlanDef] = Field(default_factory=list, max_length=20)
    till: TillSection | None = None
    transfers: TransfersSection | None = None


@dataclass(frozen=True)
class ApplyResult:
    version: int
    changed: bool
    diff: str
    document: dict[str, Any]


def parse(raw: Any) -> ProgrammeDocument:
    """Validate a raw document; 422 naming the path of every error."""
    if not isinstance(raw, dict):
        raise ValidationFailed.on((), "a programme document is a mapping")
    nul = find_nul(raw)  # from a file (the API refuses NUL at its door)
    if nul is not None:
        raise ValidationFailed.on(nul, "text must not contain the NUL character (\\u0000)")
    try:
        doc = ProgrammeDocument.model_validate(raw)
    except ValidationError as exc:
        fields = [FieldError(tuple(e["loc"]), error_message(e)) for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(p) for p in f.loc)}: {f.msg}" for f in fields)
        raise ValidationFailed(detail, fields=fields) from exc
    if doc.locale is not None:
        try:
            validate_locale(doc.locale)
        except ValueError as exc:
            raise ValidationFailed.on("locale", str(exc)) from exc
    codes = [w.code for w in doc.wallets or []]
    if len(set(codes)) != len(codes):
        raise ValidationFailed.on("wallets", "each wallet code may appear once")
    check_engagement(doc)
    tiers = {level.code for level in doc.tiers.levels} if doc.tiers else set()
    catalogue.check(doc.voucher_pools, doc.rewards, tiers)
    check_offers(doc)
    check_plans(doc)
    return doc


def check_engagement(doc: ProgrammeDocument) -> None:
    """Cross-section checks: tier, badge and wallet names used where they are declared."""
    levels = {level.code for level in doc.tiers.levels} if doc.tiers else set()
    for i, rule in enumerate(doc.rules):
        rates = getattr(rule.award, "rate_by_tier", {})
        for tier in rates if doc.tiers is not None else ():
            if tier not in levels:
                raise ValidationFailed.on(
                    ("rules", i, "award", "rate_by_tier", tier), "no such tier"
                )
    badges = _unique_codes(doc.badges, "badges")
    _unique_codes(doc.challenges, "challenges")
    for i, rule in enumerate(doc.rules):
        for j, effect in enumerate(rule.effects):
            if effect.kind == "badge" and effect.badge not in badges:
                raise ValidationFailed.on(
                    ("rules", i, "effects", j, "badge"), "declare it in badges"
                )
    for i, challenge in enumerate(doc.challenges):
        if challenge.reward.badge is not None and challenge.reward.badge not in badges:
            raise ValidationFailed.on(("challenges", i, "reward", "badge"), "declare it in badges")
    check_sections(
        referral=doc.referral,
        leaderboards=doc.leaderboards,
        streaks=doc.streaks,
        check_in=doc.check_in,
        badges=badges,
        challenges={c.code: c for c in doc.challenges},
    )
    for path, cond in _engagement_conditions(doc):
        for where, field in condition_fields(cond):
            if field.split(".")[0] not in ("event", "traits") and field != "member.segments":
                raise ValidationFailed.on(
                    (*path, *where), "fields here are event.*, member.segments or traits.*"
                )


def _check_traits(doc: ProgrammeDocument, rules: ProgrammeRules) -> None:
    """Every ``traits.*`` a rule, badge, challenge or reward reads is a trait of the
    programme."""
    found = trait_fields(rules)
    for path, cond in _engagement_conditions(doc):
        found += [((*path, *where), f) for where, f in condition_fields(cond)]
    for i, reward in enumerate(doc.rewards):
        if reward.condition is not None:
            cond = parse_condition(reward.condition, loc=("rewards", i, "condition"))
            found += [(("rewards", i, "condition", *w), f) for w, f in condition_fields(cond)]
    for loc, field in found:
        if field.startswith("traits.") and resolve_trait(field, doc.traits) is None:
            raise ValidationFailed.on(loc, f"unknown trait {field!r}")


def _unique_codes(items: list[BadgeDef] | list[ChallengeDef], section: str) -> set[str]:
    seen: set[str] = set()
    for i, code in enumerate(item.code for item in items):
        if code in seen:
            raise ValidationFailed.on((section, i, "code"), f"duplicate code {code!r}")
        seen.add(code)
    return seen


def _engagement_conditions(doc: ProgrammeDocument) -> list[tuple[tuple[str | int, ...], Any]]:
    found: list[tuple[tuple[str | int, ...], Any]] = []
    for i, badge in enumerate(doc.badges):
        if badge.when is not None:
            found.append((("badges", i, "when"), badge.when))
    for i, challenge in enumerate(doc.challenges):
        for j, goal in enumerate(challenge.goals):
            if goal.when is not None:
                found.append((("challenges", i, "goals", j, "when"), goal.when))
    return found


def rules_of(programme: Programme, document: dict[str, Any]) -> ProgrammeRules:
    """The engine's view of a stored document, in the programme's currency and time zone."""
    wallets = [
        {"name": w["code"], "unit": w.get("unit", "points"), "redeemable": w.get("spendable", True)}
        for w in document["wallets"]
    ]
    return load_programme(
        {
            "currency": programme.currency,
            "time_zone": programme.timezone,
            "wallets": wallets,
            "exclusive_groups": document.get("exclusive_groups", {}),
            "rules": document.get("rules", []),
        }
    )


def canonical(
    programme: Programme, doc: ProgrammeDocument, live: dict[str, Any] | None
) -> dict[str, Any]:
    """The document as stored: defaults filled in, rule versions bumped where rules changed."""
    wallets = doc.wallets if doc.wallets is not None else default_wallets(programme)
    data = doc.model_copy(update={"wallets": wallets}).model_dump(mode="json", exclude_none=True)
    before = {r["id"]: r for r in (live or {}).get("rules", [])}
    for rule in data["rules"]:
        old = before.get(rule["id"])
        if old is None:
            rule["version"] = 1
        elif {**old, "version": 0} == {**rule, "version": 0}:
            rule["version"] = old["version"]
        else:
            rule["version"] = old["version"] + 1
    return data


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """A unified diff of the two documents' YAML (empty when they are the same)."""
    before = to_yaml(old).splitlines(keepends=True) if old else []
    after = to_yaml(new).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, fromfile="live", tofile="candidate"))


def live_document(session: Session, *, programme: Programme) -> dict[str, Any] | None:
    if programme.live_version == 0:
        return None
    return get_version(session, programme=programme, version=programme.live_version).document


def get_version(session: Session, *, programme: Programme, version: int) -> ProgrammeVersion:
    row = session.scalar(
        select(ProgrammeVersion).where(
            ProgrammeVersion.programme_id == programme.id, ProgrammeVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"programme version {version} does not exist")
    return row


def list_versions(session: Session, *, programme: Programme) -> list[ProgrammeVersion]:
    query = (
        select(ProgrammeVersion)
        .where(ProgrammeVersion.programme_id == programme.id)
        .order_by(ProgrammeVersion.version.desc())
    )
    return list(session.scalars(query))


def prepare(
    session: Session, *, programme: Programme, raw: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Validate ``raw`` completely (rules compile) and return it canonical, with the live one."""
    doc = parse(raw)
    live = live_document(session, programme=programme)
    document = canonical(programme, doc, live)
    rules = rules_of(programme, document)  # raises ValidationFailed with the path of a bad rule
    _check_traits(doc, rules)  # the traits registry sits above rules: names checked here
    status = (document.get("tiers") or {}).get("status_wallet")
    if status is not None and status not in {w["code"] for w in document["wallets"]}:
        raise ValidationFailed.on(("tiers", "status_wallet"), "no wallet with this code")
    declared = {w["code"] for w in document["wallets"]}
    for i, code in enumerate((document.get("transfers") or {}).get("wallets") or []):
        if code not in declared:  # issue 16: transfers
            raise ValidationFailed.on(("transfers", "wallets", i), "no wallet with this code")
    segments.check_document(document, doc.segments)  # fields, wallets, categories, traits
    scenario_service.check_document(document, doc.scenarios)  # templates, segments, badges
    return document, live


def apply(
    session: Session,
    *,
    programme: Programme,
    raw: Any,
    actor: str,
    comment: str = "",
    dry_run: bool = False,
) -> ApplyResult:
    """Validate, diff and (unless ``dry_run`` or unchanged) store a new live version."""
    locked = session.get(Programme, programme.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    document, live = prepare(session, programme=locked, raw=raw)
    changes = diff(live, document) if live != document else ""
    if dry_run or not changes:
        return ApplyResult(locked.live_version, bool(changes), changes, document)
    version = locked.live_version + 1
    session.add(
        ProgrammeVersion(
            programme_id=locked.id, version=version, document=document, actor=actor, comment=comment
        )
    )
    for wallet in document["wallets"]:
        declare_wallet(session, programme=locked, data=WalletIn.model_validate(wallet))
    if document.get("name"):
        locked.name = document["name"]
    if document.get("locale"):
        locked.locale = validate_locale(document["locale"])
    locked.settings = document["settings"]
    locked.live_version = version
    session.flush()
    catalogue.sync(session, programme=locked, document=document)
    if document.get("tiers"):
        from fidelia.tiers.jobs import schedule  # tiers reads documents: import late

        schedule(session, programme=locked, after=utcnow())
    if document.get("leaderboards"):  # the daily closing of finished periods (issue 14)
        schedule_close(session, programme=locked, after=utcnow())
    if document.get("traits"):
        from fidelia.traits.jobs import schedule as schedule_traits  # late, as the tiers'

        schedule_traits(session, programme=locked, after=utcnow())
    if document.get("segments") or (live or {}).get("segments"):
        segment_jobs.schedule_now(session, programme=locked, version=version)
    if document.get("scenarios"):
        scenario_jobs.schedule(session, programme=locked, at=utcnow())
    return ApplyResult(version, True, changes, document)


def _write_segments(
    session: Session, programme: Programme, raw: dict[str, Any], actor: str, comment: str
) -> int:
    return apply(session, programme=programme, raw=raw, actor=actor, comment=comment).version


segments.set_document_writer(_write_segments)  # the segment API versions the document


def _traits_of(
    session: Session, programme: Programme, member_id: uuid.UUID, names: frozenset[str]
) -> dict[str, Any]:
    """A member's traits as a reward condition reads them (``traits.*``), as of now."""
    row = traits_service.traits_row(session, member_id=member_id)
    if row is None or row["programme_id"] != programme.id:
        return {}
    section = traits_service.section_for(session, programme).section
    return traits_service.context_for(row, now=utcnow(), section=section, only=set(names))


eligibility.set_traits_reader(_traits_of)  # rewards sit below traits: the reader is given
