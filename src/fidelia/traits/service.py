"""Computed traits, kept current by the intake: one read and one write per group of events.

Design note
-----------
``apply_events`` runs in the event's own transaction, after the group's writes: it reads the
``member_traits`` rows of the group's members in one SELECT, folds the purchases into them in
Python (:mod:`fidelia.traits.compute`) and writes them back in one multi-row upsert. A member's
row is written when one of their purchases arrived or when they have no row yet (a prospect);
other events change nothing stored. The intake holds the member's lock while it does this, so
two groups never fold into the same row at once.

RFM scores are quintiles of the whole programme, so they are not moved by one event: the daily
job and the rebuild score everyone (:mod:`fidelia.traits.rebuild`). The lifecycle stage is
re-evaluated on every write and by the daily job (a stage such as "lapsed" moves with time).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.kit.bulk import upsert_tuples
from fidelia.kit.conditions import Predicate, compile_condition, condition_fields
from fidelia.kit.prepared import Prepared
from fidelia.models import MemberTraits, Programme
from fidelia.rules.state import EngineEvent
from fidelia.traits import compute as c
from fidelia.traits.schemas import TraitsSection

TABLE: Table = MemberTraits.__table__  # type: ignore[assignment]
# The CLV job writes p_alive, clv and churn_risk (fidelia.analytics.clv_service): kept too.
KEPT = (
    "rfm_r", "rfm_f", "rfm_m", "rfm_cell", "last_redemption_at", "p_alive", "clv", "churn_risk",
)  # fmt: skip


class Compiled:
    """A programme's traits section with what is derived from it once per version."""

    def __init__(self, section: TraitsSection, declared: bool) -> None:
        self.section = section
        self.declared = declared
        self.matcher = c.Matcher(section)
        self.stages: list[tuple[str, Predicate]] = [
            (stage.id, compile_condition(stage.when)) for stage in section.lifecycle
        ]
        # The traits the stages read: the context leaves out the costly parts nobody reads.
        self.reads = {
            field.split(".")[1]
            for stage in section.lifecycle
            if stage.when is not None
            for _, field in condition_fields(stage.when)
            if field.startswith("traits.") and field.count(".") >= 1
        }
        self.reads_scores = bool(self.reads & {*KEPT, "lifecycle_stage"})
        # stored values and whole days only (the demo's stages): read straight from the row
        self.plain = self.reads <= {*_SCALARS, *_WHOLE_DAYS}

    def stage(self, traits: Mapping[str, Any]) -> str | None:
        """The first lifecycle stage whose condition holds for this traits context."""
        ctx = {"traits": traits}
        return next((sid for sid, holds in self.stages if holds(ctx)), None)

    def stage_of(self, row: Mapping[str, Any], now: datetime) -> str | None:
        """The lifecycle stage of a row (only what the stages read is put in the context)."""
        if not self.stages:
            return None
        if self.plain:  # the names read, as context_for gives them
            traits = {
                name: _WHOLE_DAYS[name](row, now) if name in _WHOLE_DAYS else row.get(name)
                for name in self.reads
            }
            return self.stage(traits)
        return self.stage(context_for(row, now=now, section=self.section, only=self.reads))


def section_for(session: Session, programme: Programme) -> Compiled:
    """The live document's ``traits`` section (defaults when it declares none), cached per
    version."""
    return versions.section(session, programme, "traits", _compile)


def _compile(raw: Mapping[str, Any]) -> Compiled:
    declared = bool(raw.get("traits"))
    section = TraitsSection.model_validate(raw["traits"]) if declared else TraitsSection()
    return Compiled(section, declared)


def context_for(
    row: Mapping[str, Any],
    *,
    now: datetime,
    section: TraitsSection,
    only: set[str] | frozenset[str] | None = None,
) -> dict[str, Any]:
    """A member's traits as conditions read them (``traits.<name>``), as of ``now``.

    Stored scalars as they are, plus what moves with time (recency, windows from the day
    buckets) and the shares (see :mod:`fidelia.traits.fields`). With ``only``, the windows and
    shares are computed only when a name in it needs them."""
    out: dict[str, Any] = {k: row.get(k) for k in _SCALARS}
    last, first, nxt = row.get("last_purchase_at"), row.get("first_purchase_at"), None
    out["recency_days"] = _days(now, last)
    out["days_since_first_purchase"] = _days(now, first)
    nxt = row.get("expected_next_purchase_at")
    out["days_to_next_purchase"] = _days(nxt, now) if nxt is not None else None
    if only is not None and not any(k.startswith(("frequency_", "monetary_")) for k in only):
        return out if not only & _SHARES else _shares(out, row)
    today = now.astimezone(UTC).date()
    for n, figures in c.windows(row.get("days") or {}, section, today).items():
        out[f"frequency_{n}d"] = figures["purchases"]
        out[f"monetary_{n}d"] = Decimal(figures["spend"])
    if only is not None and not only & _SHARES:
        return out
    return _shares(out, row)


_SHARES = {"spend_share", "purchases_share", "channel_share"}


def _shares(out: dict[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    count, spend = row.get("purchases_count") or 0, Decimal(row.get("spend_total") or 0)
    spend_share: dict[str, dict[str, float]] = {}
    purchases_share: dict[str, dict[str, float]] = {}
    for dim, values in (row.get("affinities") or {}).items():
        spend_share[dim] = {v: _ratio(Decimal(s), spend) for v, (n, s) in values.items()}
        purchases_share[dim] = {v: _ratio(n, count) for v, (n, s) in values.items()}
    out["spend_share"], out["purchases_share"] = spend_share, purchases_share
    channels = row.get("channels") or {}
    out["channel_share"] = {ch: _ratio(n, count) for ch, n in channels.items()}
    return out


_SCALARS = (
    "first_purchase_at", "last_purchase_at", "purchases_count", "spend_total", "average_basket",
    "interval_mean_days", "interval_median_days", "last_interval_days",
    "expected_next_purchase_at", "rfm_r", "rfm_f", "rfm_m", "rfm_cell", "lifecycle_stage",
    "promo_purchases_share", "promo_spend_share", "favourite_store", "favourite_channel",
    "last_redemption_at", "p_alive", "clv", "churn_risk",
)  # fmt: skip


def _days(later: datetime | None, earlier: datetime | None) -> int | None:
    if later is None or earlier is None:
        return None
    return int((later - earlier).total_seconds() // 86400)


_WHOLE_DAYS: dict[str, Callable[[Mapping[str, Any], datetime], int | None]] = {
    "recency_days": lambda row, now: _days(now, row.get("last_purchase_at")),
    "days_since_first_purchase": lambda row, now: _days(now, row.get("first_purchase_at")),
    "days_to_next_purchase": lambda row, now: _days(row.get("expected_next_purchase_at"), now),
}


def _ratio(part: Decimal | int, whole: Decimal | int) -> float:
    return float(part) / float(whole) if whole else 0.0


def apply_events(
    session: Session,
    *,
    programme: Programme,
    events: Sequence[tuple[uuid.UUID, EngineEvent]],
    now: datetime,
) -> None:
    """Fold a group's accepted events into their members' traits (one SELECT, one upsert)."""
    if not events:
        return
    compiled = section_for(session, programme)
    member_ids = list(dict.fromkeys(mid for mid, _ in events))
    stored: dict[uuid.UUID, Mapping[str, Any]] = {
        r[0]: dict(zip(_NAMES, r, strict=True)) for r in _READ.rows(session, {"ids": member_ids})
    }
    figures: dict[uuid.UUID, c.Figures] = {}
    for mid, event in events:
        if event.type != "purchase" or event.purchase is None:
            continue
        fig = figures.get(mid)
        if fig is None:
            fig = figures[mid] = c.Figures.of(stored[mid]) if mid in stored else c.Figures()
        c.add_purchase(
            fig,
            at=event.occurred_at,
            purchase=event.purchase,
            channel=event.channel,
            store=event.store,
            matcher=compiled.matcher,
        )
    rows = []
    for mid in member_ids:
        if mid in stored and mid not in figures:
            continue
        old = stored.get(mid)
        row = build_row(
            compiled,
            figures.get(mid) or c.Figures(),
            member_id=mid,
            programme_id=programme.id,
            now=now,
            kept={k: old[k] for k in KEPT} if old is not None else None,
        )
        rows.append(row)
    upsert(session, rows)


def build_row(
    compiled: Compiled,
    fig: c.Figures,
    *,
    member_id: uuid.UUID,
    programme_id: uuid.UUID,
    now: datetime,
    kept: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A complete ``member_traits`` row: derived figures, kept scores, the lifecycle stage."""
    row: dict[str, Any] = {"member_id": member_id, "programme_id": programme_id}
    row.update(c.derive(fig, section=compiled.section, now=now))
    row.update(kept or dict.fromkeys(KEPT))
    row["lifecycle_stage"] = compiled.stage_of(row, now)
    return row


def upsert(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace whole rows (all of them with every column, distinct members) through
    the driver, each value bound by its column's type (:func:`fidelia.kit.bulk.upsert_tuples`:
    one executemany on SQLite, one ``INSERT ... SELECT FROM unnest ... ON CONFLICT`` on
    PostgreSQL)."""
    if rows:
        tuples = list(map(itemgetter(*_NAMES), rows))
        upsert_tuples(session, TABLE, _NAMES, tuples, _replace_all)


_NAMES = tuple(column.name for column in TABLE.c)
# compiled once and run through the driver (kit.prepared): it runs for every group of events
_READ = Prepared(select(TABLE).where(TABLE.c.member_id.in_(bindparam("ids", expanding=True))))


def _replace_all(dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in _NAMES if n != "member_id")
    return f"ON CONFLICT (member_id) DO UPDATE SET {updates}"


def traits_row(session: Session, *, member_id: uuid.UUID) -> dict[str, Any] | None:
    """A member's stored traits as a mapping of columns, or None."""
    found = session.execute(select(TABLE).where(TABLE.c.member_id == member_id)).mappings().first()
    return dict(found) if found is not None else None


def traits_rows(
    session: Session, *, member_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The stored traits of some members (one statement), by member; those without a row are
    missing."""
    if not member_ids:
        return {}
    query = select(TABLE).where(TABLE.c.member_id.in_(list(member_ids)))
    return {row["member_id"]: dict(row) for row in session.execute(query).mappings()}
