"""The demo programme (``demo_programme.yaml``, a whole programme document) and its earning
rules as the engine reads them, for demos, tests and benches."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from fidelia.rules.schemas import ProgrammeRules, load_programme

CURRENCY, TIME_ZONE = "EUR", "Europe/Paris"
WALLETS = [
    {"name": "points", "unit": "points"},
    {"name": "cashback", "unit": "money"},
    {"name": "status", "unit": "points", "redeemable": False},
]


def programme_document() -> dict[str, Any]:
    """The whole demo programme document (rules, tiers, badges, challenges, rewards)."""
    text = resources.files("fidelia.rules").joinpath("demo_programme.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def demo_document() -> dict[str, Any]:
    """The earning side of the demo programme as a raw rules document (edit it for variants)."""
    document = programme_document()
    return {
        "currency": CURRENCY,
        "time_zone": TIME_ZONE,
        "wallets": WALLETS,
        "exclusive_groups": document.get("exclusive_groups", {}),
        "rules": document["rules"],
    }


def demo_rules() -> ProgrammeRules:
    """The validated earning rules of the demo programme."""
    return load_programme(demo_document())
