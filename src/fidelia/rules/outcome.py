"""What the engine decides: effects with their explanations, and the skipped rules.

Design note
-----------
Effects are small dataclasses, not Pydantic models: the engine creates millions of them
during a back-test. :class:`Award` and :class:`LineShare` are not ``frozen`` only because a
frozen dataclass costs three times as much to create; treat them as values all the same.
Every effect names the rule and the rule version that produced it.
An :class:`Award` *is* its explanation: base, rate, multiplier, caps applied and the
allocation of the amount to each purchase line (:class:`LineShare`), which a later return
uses to reverse exactly what the returned lines earned. ``as_dict`` gives the JSON shape the
API returns (money and Decimals as strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

Amount = int | Decimal


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(slots=True)
class LineShare:
    """The part of an award that one purchase line earned."""

    sku: str
    base: Decimal
    amount: Amount

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: ``{"sku", "base", "amount"}``."""
        amount = self.amount
        return {
            "sku": self.sku,
            "base": str(self.base),
            "amount": str(amount) if isinstance(amount, Decimal) else amount,
        }


@dataclass(slots=True)
class Award:
    """Credit ``amount`` to ``wallet`` (int points, or Decimal money quantised to 0.01)."""

    rule_id: str
    rule_version: int
    wallet: str
    amount: Amount
    base: Decimal | None = None
    rate: Decimal | None = None
    multiplier: Decimal = Decimal(1)
    lines: tuple[LineShare, ...] = ()
    capped_by: tuple[str, ...] = ()
    tier: str | None = None
    expires_at: datetime | None = None
    available_at: datetime | None = None
    kind: Literal["award"] = "award"

    def as_dict(self) -> dict[str, Any]:
        """JSON shape of an award effect with its explanation."""
        # what _json gives, written out for the types of the fields (one award per rule that
        # fires on each event)
        amount, expires, available = self.amount, self.expires_at, self.available_at
        return {
            "kind": "award",
            "rule": {"id": self.rule_id, "version": self.rule_version},
            "wallet": self.wallet,
            "amount": str(amount) if isinstance(amount, Decimal) else amount,
            "expires_at": None if expires is None else _json(expires),
            "available_at": None if available is None else _json(available),
            "explanation": {
                "base": None if self.base is None else _json(self.base),
                "rate": None if self.rate is None else _json(self.rate),
                "multiplier": str(self.multiplier),
                "tier": self.tier,
                "capped_by": list(self.capped_by),
                "lines": [line.as_dict() for line in self.lines],
            },
        }


@dataclass(frozen=True, slots=True)
class IssueVoucher:
    """Issue one voucher of catalogue reward ``reward`` (applied by the rewards domain)."""

    rule_id: str
    rule_version: int
    reward: str
    kind: Literal["voucher"] = "voucher"

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: ``{"kind": "voucher", "rule", "reward"}``."""
        rule = {"id": self.rule_id, "version": self.rule_version}
        return {"kind": self.kind, "rule": rule, "reward": self.reward}


@dataclass(frozen=True, slots=True)
class AwardBadge:
    """Give badge ``badge`` (applied by the engagement domain)."""

    rule_id: str
    rule_version: int
    badge: str
    kind: Literal["badge"] = "badge"

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: ``{"kind": "badge", "rule", "badge"}``."""
        rule = {"id": self.rule_id, "version": self.rule_version}
        return {"kind": self.kind, "rule": rule, "badge": self.badge}


@dataclass(frozen=True, slots=True)
class EmitEvent:
    """Emit the domain event ``name`` (scenarios and webhooks listen to it)."""

    rule_id: str
    rule_version: int
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)
    kind: Literal["emit"] = "emit"

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: ``{"kind": "emit", "rule", "event", "data"}``."""
        rule = {"id": self.rule_id, "version": self.rule_version}
        return {"kind": self.kind, "rule": rule, "event": self.name, "data": dict(self.data)}


Effect = Award | IssueVoucher | AwardBadge | EmitEvent


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule whose conditions held but which gave nothing, and why (limit, group, budget)."""

    rule_id: str
    rule_version: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: ``{"rule", "reason"}``."""
        return {"rule": {"id": self.rule_id, "version": self.rule_version}, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything one event produces, in a deterministic order (phase, priority, rule id)."""

    effects: tuple[Effect, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @property
    def awards(self) -> tuple[Award, ...]:
        """The wallet credits only."""
        return tuple([e for e in self.effects if isinstance(e, Award)])

    def totals(self) -> dict[str, Amount]:
        """Amount per wallet, e.g. ``{"points": 120, "cashback": Decimal("2.40")}``."""
        out: dict[str, Amount] = {}
        for award in self.effects:
            if isinstance(award, Award):
                out[award.wallet] = out.get(award.wallet, 0) + award.amount
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON shape for the API and the dry-run."""
        return {
            "totals": {k: _json(v) for k, v in self.totals().items()},
            "effects": [e.as_dict() for e in self.effects],
            "skipped": [s.as_dict() for s in self.skipped],
        }


EMPTY = Evaluation()
