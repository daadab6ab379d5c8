"""Programme documents: bad documents are refused with the path of the error."""

from __future__ import annotations

from typing import Any

import pytest

from fidelia.errors import ValidationFailed
from fidelia.rules.demo import demo_document, demo_rules
from fidelia.rules.schemas import load_programme


def doc(*rules: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "time_zone": "Europe/Paris",
        "wallets": [{"name": "points"}, {"name": "cashback", "unit": "money"}],
        "rules": [{"name": r["id"], **r} for r in rules],
        **top,
    }


def error_of(data: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationFailed) as err:
        load_programme(data)
    field = err.value.fields[0]
    return field.loc, field.msg


def test_the_demo_programme_is_valid_and_has_sixteen_rules() -> None:
    assert len(demo_rules().rules) == 16


def test_unknown_keys_are_refused() -> None:
    loc, _ = error_of(doc({"id": "r", "award": {"kind": "fixed", "amount": 1, "amout": 2}}))

    assert loc == ("rules", 0, "award", "fixed", "amout")


def test_a_bad_condition_deep_in_a_rule_points_at_its_place() -> None:
    bad_when = {
        "any": [
            {"field": "event.channel", "op": "eq", "value": "web"},
            {"field": "event.total", "op": "gte"},
        ]
    }

    loc, _ = error_of(doc({"id": "r", "when": bad_when, "award": {"kind": "fixed", "amount": 1}}))

    assert loc == ("rules", 0, "when", "any", 1, "value")


def test_cross_field_checks_name_the_field() -> None:
    fixed = {"kind": "fixed", "amount": 1}
    cases = [
        (doc({"id": "r", "award": {**fixed, "wallet": "miles"}}), ("rules", 0, "award", "wallet")),
        (doc({"id": "r", "award": fixed}, {"id": "r", "award": fixed}), ("rules", 1, "id")),
        (
            doc({"id": "r", "award": {"kind": "booster", "of": "nope", "multiplier": 2}}),
            ("rules", 0, "award", "of"),
        ),
        (doc({"id": "r", "award": fixed, "exclusive_group": "g"}), ("rules", 0, "exclusive_group")),
        (
            doc({"id": "r", "event_type": "review", "award": {"kind": "spend"}}),
            ("rules", 0, "award"),
        ),
        (
            doc(
                {"id": "r", "when": {"field": "line.sku", "op": "eq", "value": "x"}, "award": fixed}
            ),
            ("rules", 0, "when", "field"),
        ),
    ]
    for data, expected in cases:
        assert error_of(data)[0] == expected


def test_yaml_friendly_values_and_bad_time_zone() -> None:
    assert error_of(doc(time_zone="Mars/Olympus"))[0] == ("time_zone",)
    assert error_of(doc({"id": "Bad Id", "award": {"kind": "fixed", "amount": 1}}))[0] == (
        "rules",
        0,
        "id",
    )


def test_a_rule_needs_something_to_do() -> None:
    loc, msg = error_of(doc({"id": "r"}))

    assert loc == ("rules", 0)
    assert "award" in msg


def test_the_demo_document_round_trips_through_the_model() -> None:
    model = demo_rules()

    again = load_programme(model.model_dump(mode="json", by_alias=True))

    assert again == model
    assert demo_document()["time_zone"] == "Europe/Paris"
