"""Models built from checked values: what ``model_construct`` builds, without its field loop."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from fidelia.events.schemas import EventIn, EventOutcome, ExternalId, MemberRef, PurchaseLine
from fidelia.kit.built import built


def test_an_event_built_is_the_event_constructed() -> None:
    ref = MemberRef.model_construct(external=ExternalId(namespace="cdnow", value="1"))
    values = {
        "id": "cdnow-1",
        "type": "purchase",
        "occurred_at": datetime(1997, 1, 1, 17, tzinfo=UTC),
        "member": ref,
        "channel": "web",
        "properties": {"order_id": "cdnow-1"},
    }
    constructed = EventIn.model_construct(**values)
    given = frozenset(values)

    in_order = {name: values.get(name) for name in EventIn.model_fields}  # store: None

    made = built(EventIn, in_order, given)

    assert list(made.__dict__) == list(constructed.__dict__)  # every field, in order
    assert made == constructed
    assert made.model_fields_set == constructed.model_fields_set == given
    assert made.model_dump_json() == constructed.model_dump_json()
    assert made.model_dump(exclude_unset=True) == constructed.model_dump(exclude_unset=True)


def test_every_field_given_is_set() -> None:
    values = {
        "sku": "cd",
        "name": None,
        "category": "music",
        "brand": None,
        "quantity": Decimal(2),
        "unit_price": Decimal("5.0000"),
        "discount": Decimal("0.0000"),
    }
    made = built(PurchaseLine, dict(values))
    assert made == PurchaseLine.model_construct(**values)
    assert made.model_fields_set == set(values)
    assert made.amount == Decimal(10)


def test_models_that_need_model_construct_are_refused() -> None:
    class Private(BaseModel):
        x: int
        _seen: int = PrivateAttr(default=0)

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        x: int

    for model in (Private, Open):
        with pytest.raises(TypeError):
            built(model, {"x": 1})
    assert built(
        EventOutcome, dict(EventOutcome.model_construct(id="a", status="accepted").__dict__)
    )
