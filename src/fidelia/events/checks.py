"""Checks on an event's content: typed properties, declared schemas, orders and returns."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, FieldError, ValidationFailed, error_message
from fidelia.events.schemas import BUILT_IN_MODELS, Purchase, Return
from fidelia.kit.prepared import Prepared
from fidelia.models import Event, Programme


def pydantic_fields(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[FieldError]:
    return [FieldError((*prefix, *err["loc"]), error_message(err)) for err in exc.errors()]


def validation_failed(exc: ValidationError, prefix: tuple[str | int, ...]) -> ValidationFailed:
    fields = pydantic_fields(exc, prefix)
    detail = "; ".join(f"{'.'.join(str(p) for p in f.loc)}: {f.msg}" for f in fields)
    return ValidationFailed(detail, fields=fields)


def typed_properties(
    event_type: str,
    properties: dict[str, Any],
    schemas: dict[str, Draft202012Validator],
) -> tuple[dict[str, Any], Any]:
    """Validate properties; returns their stored JSON form and the typed model (if built in)."""
    model = BUILT_IN_MODELS.get(event_type)
    if model is not None:
        try:
            typed = model.model_validate(properties)
        except ValidationError as exc:
            raise validation_failed(exc, ("properties",)) from exc
        if isinstance(typed, Purchase):
            check_total(typed)
        return typed.model_dump(mode="json", exclude_defaults=False), typed
    validator = schemas.get(event_type)
    if validator is not None:
        errors = sorted(validator.iter_errors(properties), key=lambda e: list(e.path))
        if errors:
            fields = [FieldError(("properties", *e.path), e.message) for e in errors]
            detail = "; ".join(".".join(str(p) for p in f.loc) + ": " + f.msg for f in fields)
            raise ValidationFailed(detail, fields=fields)
    return properties, None


TOTAL_TOLERANCE_PER_LINE = Decimal("0.01")


def check_total(purchase: Purchase) -> None:
    """A purchase's ``total`` must be what its lines cost (after their discounts) plus shipping,
    give or take a cent per line (tills round each line). Rules read both the lines and the
    total (``event.total``), so a total that disagrees is refused rather than guessed at; an
    order-wide discount belongs in the lines' ``discount``."""
    expected = sum((line.amount for line in purchase.lines), Decimal(0)) + purchase.shipping
    tolerance = TOTAL_TOLERANCE_PER_LINE * len(purchase.lines)
    if abs(purchase.total - expected) > tolerance:
        raise ValidationFailed.on(
            ("properties", "total"),
            f"{purchase.total} is not the lines after their discounts plus shipping "
            f"({expected.normalize():f}, within {tolerance})",
        )


@dataclass
class Order:
    """A purchase as returns need it: who bought what, and the awards it earned."""

    member_id: uuid.UUID
    event_id: uuid.UUID
    bought: dict[str, Decimal]
    awards: list[dict[str, Any]]


_ORDERS = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(Event.id, Event.type, Event.member_id, Event.properties, Event.outcome).where(
        Event.programme_id == bindparam("programme_id"),
        Event.reference.in_(bindparam("orders", expanding=True)),
    )
)


class OrderBook:
    """Purchases and returns of the orders a batch mentions, loaded once, kept up to date."""

    def __init__(self, session: Session, programme: Programme, order_ids: set[str]) -> None:
        self.purchases: dict[str, Order] = {}
        self.returned: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        if not order_ids:
            return
        # The type is checked here, not in SQL: given ``type IN (...)``, SQLite (no
        # statistics) chose the (programme_id, type, occurred_at) index and read every
        # purchase of the programme for each batch instead of the few orders named.
        params = {"programme_id": programme.id, "orders": sorted(order_ids)}
        for event_id, event_type, member_id, properties, outcome in _ORDERS.rows(session, params):
            if event_type == "purchase":
                purchase = Purchase.model_validate(properties)
                self.add_purchase(member_id, event_id, purchase, outcome.get("effects", []))
            elif event_type == "return":
                self.add_return(Return.model_validate(properties))

    def add_purchase(
        self,
        member_id: uuid.UUID,
        event_id: uuid.UUID,
        purchase: Purchase,
        effects: list[dict[str, Any]],
    ) -> None:
        bought = {line.sku: line.quantity for line in purchase.lines}
        awards = [e for e in effects if e.get("kind") == "award"]
        self.purchases[purchase.order_id] = Order(member_id, event_id, bought, awards)

    def add_return(self, ret: Return) -> None:
        for line in ret.lines:
            self.returned[ret.order_id][line.sku] += line.quantity

    def check_purchase(self, purchase: Purchase) -> None:
        if purchase.order_id in self.purchases:
            raise Conflict(
                f"order {purchase.order_id!r} was already sent as a purchase (under another id)",
                fields=[FieldError(("properties", "order_id"), "duplicate order")],
            )

    def check_return(self, member_id: Any, ret: Return) -> None:
        """A return must name a purchase of the same member, and not return more than was bought."""
        loc_order = ("properties", "order_id")
        if ret.order_id not in self.purchases:
            raise ValidationFailed.on(loc_order, f"no purchase with order id {ret.order_id!r}")
        order = self.purchases[ret.order_id]
        bought = order.bought
        if order.member_id != member_id:
            raise ValidationFailed.on(loc_order, "the order was bought by another member")
        asked: dict[str, Decimal] = defaultdict(Decimal)
        for i, line in enumerate(ret.lines):
            if line.sku not in bought:
                raise ValidationFailed.on(("properties", "lines", i, "sku"), "not in the order")
            asked[line.sku] += line.quantity
            left = bought[line.sku] - self.returned[ret.order_id][line.sku]
            if asked[line.sku] > left:
                raise Conflict(
                    f"returning {asked[line.sku]} of {line.sku!r} but only {left} left to return",
                    fields=[FieldError(("properties", "lines", i, "quantity"), f"at most {left}")],
                )
