"""Rules read ``member.segments``: a rule for a segment's members fires for them only, as the
member's segments stood before the event."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import Api, unique_email
from tests.segments.conftest import CAT_BUYERS, apply, buy, document, enrol, segments_of


def _document() -> dict[str, Any]:
    doc = document(CAT_BUYERS)
    doc["rules"].append(
        {
            "id": "cat-bonus",
            "name": "+50 points per purchase for cat-food buyers",
            "when": {"field": "member.segments", "op": "contains", "value": "cat-buyers"},
            "award": {"kind": "fixed", "amount": 50},
        }
    )
    return doc


def _points(outcome: dict[str, Any]) -> int:
    awards = [e for e in outcome["effects"] if e["kind"] == "award"]
    return sum(int(a["amount"]) for a in awards if a["rule"]["id"] == "cat-bonus")


def test_a_rule_for_a_segment_fires_for_its_members_only(api: Api) -> None:
    apply(api, _document())
    member = enrol(api, unique_email())
    other = enrol(api, unique_email())
    first = buy(api, member, days_ago=2, category="cat-food")
    assert _points(first) == 0  # not in the segment before this purchase
    assert segments_of(api, member) == ["cat-buyers"]
    assert _points(buy(api, member, days_ago=1)) == 50
    assert _points(buy(api, other, days_ago=1)) == 0
