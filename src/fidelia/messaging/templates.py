"""Message templates: sandboxed Jinja2, checked when saved, rendered per member and locale.

A template is compiled in a :class:`~jinja2.sandbox.SandboxedEnvironment` (no attribute of
Python internals, no import, no eval of user text) with ``StrictUndefined``: a variable that is
not in the context is an error, never an empty string. When a template is saved (the programme
document) or previewed, the top-level names it reads must be among :data:`CONTEXT_NAMES` and it
is rendered once against a complete specimen context, so a typo such as ``member.frist_name``
in an unconditional block is a 422 then, not a failed send later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

# The names a template may read (see ``service.context_for``).
CONTEXT_NAMES = frozenset(
    {"member", "traits", "points", "expiring", "tier", "event", "programme", "survey", "links"}
)
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
HREF = re.compile(r"""href\s*=\s*(["'])(https?://[^"']+)\1""", re.IGNORECASE)


class TemplateProblem(ValueError):
    """A template that does not compile, names an unknown variable or fails on the specimen."""


def _env(html: bool) -> SandboxedEnvironment:
    return _HTML_ENV if html else _ENV


@lru_cache(maxsize=2048)
def _compiled(source: str, html: bool) -> Any:
    return _env(html).from_string(source)


def check(source: str, *, html: bool = False) -> None:
    """Compile ``source`` and check the names it reads; raises :class:`TemplateProblem`."""
    env = _env(html)
    try:
        names = meta.find_undeclared_variables(env.parse(source))
    except TemplateError as exc:
        raise TemplateProblem(f"does not compile: {exc}") from exc
    unknown = sorted(names - CONTEXT_NAMES)
    if unknown:
        known = ", ".join(sorted(CONTEXT_NAMES))
        raise TemplateProblem(f"unknown variable {unknown[0]!r} (known: {known})")
    try:
        _compiled(source, html).render(specimen())
    except TemplateError as exc:
        raise TemplateProblem(f"fails on a sample member: {exc}") from exc
    except Exception as exc:  # arithmetic on the wrong type, etc.: a template error too
        raise TemplateProblem(f"fails on a sample member: {type(exc).__name__}: {exc}") from exc


def names_of(*sources: str | None) -> frozenset[str]:
    """The context names the given (checked) templates read."""
    found: frozenset[str] = frozenset()
    for source in sources:
        if source:
            found |= _names(source)
    return found


@lru_cache(maxsize=2048)
def _names(source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_ENV.parse(source))) & CONTEXT_NAMES


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """Render a checked template for one member; raises :class:`TemplateProblem`."""
    try:
        return str(_compiled(source, html).render(context))
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from exc
    except Exception as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from exc


def links_of(html: str) -> list[str]:
    """The distinct http(s) URLs of the ``href`` attributes of rendered HTML, in order."""
    seen: dict[str, None] = {}
    for match in HREF.finditer(html):
        seen.setdefault(match.group(2), None)
    return list(seen)


class Anything:
    """A free-form value in the specimen (event properties, attributes, affinities): any key or
    attribute of it exists, it is empty and false, so only the shape of the template is
    checked there."""

    def __getattr__(self, name: str) -> Anything:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: object) -> Anything:
        return self

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return ""

    def get(self, key: object, default: object = None) -> object:
        return default


class Defaulting(dict[str, Any]):
    """A mapping whose missing keys read as ``default`` (a wallet without points, nothing
    expiring), so ``points.cashback`` is 0 rather than an error for a member without any."""

    def __init__(self, values: Mapping[str, Any], default: Any) -> None:
        super().__init__(values)
        self._default = default

    def __missing__(self, key: str) -> Any:
        return self._default


def specimen() -> dict[str, Any]:
    """A complete context (every key a real one has), for checking templates when saved."""
    return {
        "member": {
            "id": "019ceb9e-6018-78a4-ad11-f033b48438b5",
            "first_name": "Laure",
            "last_name": "Moulin",
            "locale": "fr",
            "postal_code": "69003",
            "birth_date": "1988-04-02",
            "status": "active",
            "enrolled_at": "2026-03-14T09:12:31+00:00",
            "attributes": Anything(),
        },
        "traits": {
            "recency_days": 16,
            "purchases_count": 7,
            "spend_total": "312.40",
            "average_basket": "44.63",
            "interval_median_days": 30.0,
            "expected_next_purchase_at": None,
            "lifecycle_stage": "active",
            "rfm": {"r": 4, "f": 3, "m": 4, "cell": "loyal"},
            "affinities": Anything(),
            "favourite_store": "lyon-part-dieu",
            "favourite_channel": "store",
            "promo_purchases_share": 0.2,
            "promo_spend_share": 0.1,
            "top_category": "cat-food",
            "promotion_sensitive": False,
        },
        "points": Defaulting({"points": 1250}, 0),
        "expiring": Defaulting(
            {"points": {"points": 200, "first_at": "2026-12-31T23:00:00+00:00"}},
            {"points": 0, "first_at": None},
        ),
        "tier": {
            "current": "silver",
            "next": "gold",
            "missing": {"points": 250},
            "review_at": None,
        },
        "event": Anything(),
        "programme": {"name": "Earth Care", "public_url": "https://loyalty.example.org"},
        "survey": {
            "code": "nps-after-visit",
            "question": "How likely are you to recommend us?",
            "scale": "nps",
            "choices": [
                {"score": n, "url": f"https://l.example.org/s?score={n}"} for n in range(11)
            ],
            "comment_url": "https://l.example.org/s",
        },
        "links": {"unsubscribe": "https://loyalty.example.org/unsubscribe/x"},
    }


GATEWAY_NAMES = frozenset({"to", "text", "sender", "message_id", "callback_url"})


def check_gateway(source: str) -> None:
    """Check a string of an SMS gateway's body template (it reads :data:`GATEWAY_NAMES`)."""
    try:
        names = meta.find_undeclared_variables(_ENV.parse(source))
    except TemplateError as exc:
        raise TemplateProblem(f"does not compile: {exc}") from exc
    unknown = sorted(names - GATEWAY_NAMES)
    if unknown:
        known = ", ".join(sorted(GATEWAY_NAMES))
        raise TemplateProblem(f"unknown variable {unknown[0]!r} (known: {known})")
