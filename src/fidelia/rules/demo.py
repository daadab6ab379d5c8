"""The demo programme's earning rules (``demo_programme.yaml``), for demos, tests and benches."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from fidelia.rules.schemas import ProgrammeRules, load_programme


def demo_document() -> dict[str, Any]:
    """The raw YAML document of the demo programme, as a dict (edit it to make variants)."""
    text = resources.files("fidelia.rules").joinpath("demo_programme.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def demo_rules() -> ProgrammeRules:
    """The validated demo programme: 15 rules from the seed documents."""
    return load_programme(demo_document())
