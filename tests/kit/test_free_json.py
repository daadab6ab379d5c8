"""The free-form JSON check (event properties, member attributes): each limit holds exactly."""

from __future__ import annotations

from typing import Any

import pytest

from fidelia.kit.bounds import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_KEY, check_free_json


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def test_depth_at_the_limit_passes_and_one_more_is_refused() -> None:
    assert check_free_json(nested(MAX_JSON_DEPTH)) == nested(MAX_JSON_DEPTH)
    with pytest.raises(ValueError, match="nested deeper"):
        check_free_json(nested(MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": "x\x00"}, "NUL"),
        ({"a\x00": 1}, "NUL"),
        ({"k" * (MAX_JSON_KEY + 1): 1}, "key is longer"),
        ({"big": "x" * MAX_JSON_BYTES}, "larger than"),
        ({"many": list(range(MAX_JSON_BYTES // 8 + 1))}, "larger than"),
    ],
)
def test_each_limit_is_refused(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_free_json(value)


def test_a_purchase_sized_value_passes() -> None:
    value = {
        "order_id": "A-1",
        "total": "59.90",
        "lines": [{"sku": "S1", "category": "cat-food", "quantity": 2, "amount": "39.90"}] * 3,
    }

    assert check_free_json(value) is value
