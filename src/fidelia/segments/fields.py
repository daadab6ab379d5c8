"""The fields a segment condition may read, resolved once when a condition is checked.

Design note
-----------
A segment condition is written in the rules' condition language (``fidelia.kit.conditions``)
over the fields below. Each field path resolves to a :class:`FieldSpec` that both evaluators
share: the SQL compiler (a whole population) and the Python evaluator (one member). Every field
has a *kind* that fixes which operators it takes, so that both evaluators can agree exactly
(text is never ordered: SQL collations and Python disagree on it; calendar operators are not
offered: segments look at members, not at one event's clock).

=================================  ======  =============================================
field                              kind    what
=================================  ======  =============================================
``profile.status`` ...             text    status, enrolment_channel, enrolment_store,
                                           locale, postal_code, first_name, last_name
``profile.birth_month``            number  1..12
``profile.days_since_enrolment``   days    whole days since enrolment
``attributes.<key>``               json    a custom attribute (top level)
``tier``                           text    the member's tier
``wallets.<code>``                 number  available balance, in the wallet's unit
``badges``                         list    badge codes held (``contains``)
``consents.<channel>``             bool    the consent decision (missing: never asked)
``identities.<kind>``              bool    has an email / phone / card / external id
``events.<type>.count``            number  events of the type, ever
``events.<type>.count_<N>d``       number  ... in the last N days (N in 1..3650)
``events.<type>.days_since_last``  days    whole days since the last one (missing: none)
``categories.<cat>.count``         number  purchases with a line in the category, ever
``categories.<cat>.count_<N>d``    number  ... in the last N days
``traits.<name>``                  (reg.)  a computed trait (``fidelia.traits.fields``)
=================================  ======  =============================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Kind = Literal["text", "number", "days", "json", "list", "bool", "instant"]
Source = Literal[
    "profile", "attributes", "tier", "wallet", "badges", "consent", "identity", "events",
    "category", "trait",
]  # fmt: skip

PROFILE_TEXT = (
    "status", "enrolment_channel", "enrolment_store", "locale", "postal_code", "first_name",
    "last_name",
)  # fmt: skip
IDENTITY_KINDS = ("email", "phone", "card", "external")
CONSENT_CHANNELS = ("email", "sms", "push", "postal")
MAX_WINDOW_DAYS = 3650
# Numbers a condition compares with: a wallet's figure times 10**6 (its largest scale) still
# fits a 64-bit integer, and ``now`` plus or minus a whole number of days stays a date.
MAX_NUMBER = Decimal(10**12)
MAX_DAYS = 100_000
# Counted fields (events.*, categories.*, one per type or category, measure and window) a
# condition, or all the segments of a document, may read: the population's statement has a
# column per counted field in a branch per type or category, so its size grows as their square.
MAX_COUNTED = 32
MAX_COUNTED_DOCUMENT = 64
# Comparisons a condition compiles to (a leaf is one; ``in`` on a days field one per value, a
# text ``contains`` on an attribute two): SQLite refuses an expression deeper than 1,000.
MAX_TERMS = 300

OPS: dict[Kind, frozenset[str]] = {
    "text": frozenset({"eq", "ne", "in", "not_in", "starts_with", "contains", "exists"}),
    "number": frozenset(
        {"eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "exists"}
    ),
    "json": frozenset(
        {
            "eq",
            "ne",
            "lt",
            "lte",
            "gt",
            "gte",
            "between",
            "in",
            "not_in",
            "starts_with",
            "contains",
            "exists",
        }
    ),
    "list": frozenset({"contains"}),
    "bool": frozenset({"eq", "ne", "exists"}),
    "instant": frozenset({"exists"}),
}
OPS["days"] = OPS["number"]
_WINDOW = re.compile(r"^count(?:_([1-9][0-9]{0,3})d)?$")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """What one field path reads: its source table, key, window and kind."""

    path: str
    source: Source
    kind: Kind
    key: str = ""
    metric: str = ""  # events/categories: "count" or "days_since_last"
    window: int | None = None  # days, for windowed counts


class UnknownField(ValueError):
    """A field path that names nothing segments can read (the message says why)."""


TraitKinds = Callable[[str], "Kind | None"]
"""The kind of ``traits.<name>`` (None: the programme keeps no such trait)."""


def resolve(
    path: str,
    *,
    wallets: Collection[str],
    categories: Collection[str],
    traits: TraitKinds,
) -> FieldSpec:
    """The :class:`FieldSpec` of ``path``; raises :class:`UnknownField` with the reason."""
    parts = path.split(".")
    head, rest = parts[0], parts[1:]
    resolver = _RESOLVERS.get(head)
    if resolver is None:
        known = ", ".join(sorted(_RESOLVERS))
        raise UnknownField(f"unknown field {path!r}: fields start with one of {known}")
    return resolver(path, rest, wallets, categories, traits)


Resolver = Callable[[str, list[str], Collection[str], Collection[str], TraitKinds], FieldSpec]


def _profile(path: str, rest: list[str], *_: object) -> FieldSpec:
    if len(rest) == 1 and rest[0] in PROFILE_TEXT:
        return FieldSpec(path, "profile", "text", rest[0])
    if rest == ["birth_month"]:
        return FieldSpec(path, "profile", "number", "birth_month")
    if rest == ["days_since_enrolment"]:
        return FieldSpec(path, "profile", "days", "days_since_enrolment")
    names = ", ".join((*PROFILE_TEXT, "birth_month", "days_since_enrolment"))
    raise UnknownField(f"unknown profile field {path!r}: one of {names}")


def _attributes(path: str, rest: list[str], *_: object) -> FieldSpec:
    if len(rest) != 1:
        raise UnknownField(f"{path!r}: name one top-level attribute, e.g. attributes.species")
    return FieldSpec(path, "attributes", "json", rest[0])


def _tier(path: str, rest: list[str], *_: object) -> FieldSpec:
    if rest:
        raise UnknownField(f"unknown field {path!r}: the tier is 'tier'")
    return FieldSpec(path, "tier", "text")


def _wallet(path: str, rest: list[str], wallets: Collection[str], *_: object) -> FieldSpec:
    if len(rest) != 1 or rest[0] not in wallets:
        known = ", ".join(sorted(wallets)) or "none"
        raise UnknownField(f"unknown wallet in {path!r}: the programme's wallets are {known}")
    return FieldSpec(path, "wallet", "number", rest[0])


def _badges(path: str, rest: list[str], *_: object) -> FieldSpec:
    if rest:
        raise UnknownField(f"unknown field {path!r}: use 'badges' with contains")
    return FieldSpec(path, "badges", "list")


def _consent(path: str, rest: list[str], *_: object) -> FieldSpec:
    if len(rest) != 1 or rest[0] not in CONSENT_CHANNELS:
        raise UnknownField(f"unknown consent channel in {path!r}: {', '.join(CONSENT_CHANNELS)}")
    return FieldSpec(path, "consent", "bool", rest[0])


def _identity(path: str, rest: list[str], *_: object) -> FieldSpec:
    if len(rest) != 1 or rest[0] not in IDENTITY_KINDS:
        raise UnknownField(f"unknown identity kind in {path!r}: {', '.join(IDENTITY_KINDS)}")
    return FieldSpec(path, "identity", "bool", rest[0])


def _counted(path: str, rest: list[str], source: Source) -> FieldSpec:
    what = "event type" if source == "events" else "category"
    if len(rest) != 2:
        raise UnknownField(f"{path!r}: write {source}.<{what}>.count or .count_<N>d")
    key, metric = rest
    if source == "events" and metric == "days_since_last":
        return FieldSpec(path, source, "days", key, "days_since_last")
    match = _WINDOW.match(metric)
    if match is None:
        extra = ", days_since_last" if source == "events" else ""
        raise UnknownField(f"{path!r}: the measure is count or count_<N>d{extra}")
    window = int(match.group(1)) if match.group(1) else None
    if window is not None and window > MAX_WINDOW_DAYS:
        raise UnknownField(f"{path!r}: windows are at most {MAX_WINDOW_DAYS} days")
    return FieldSpec(path, source, "number", key, "count", window)


def _events(path: str, rest: list[str], *_: object) -> FieldSpec:
    if rest and not re.match(r"^[a-z][a-z0-9_]*$", rest[0]):
        raise UnknownField(f"{path!r}: not an event type")
    return _counted(path, rest, "events")


def _category(
    path: str, rest: list[str], wallets: Collection[str], categories: Collection[str], *_: object
) -> FieldSpec:
    spec = _counted(path, rest, "category")
    if spec.key not in categories:
        known = ", ".join(sorted(categories)) or "none declared"
        raise UnknownField(
            f"unknown category {spec.key!r}: declare it in segments.categories ({known})"
        )
    return spec


def _trait(
    path: str, rest: list[str], w: Collection[str], c: Collection[str], traits: TraitKinds
) -> FieldSpec:
    kind = traits(path) if rest else None
    if kind is None:
        raise UnknownField(f"unknown trait {path!r} (GET /api/v1/members/{{id}}/traits lists them)")
    return FieldSpec(path, "trait", kind, path)


_RESOLVERS: dict[str, Resolver] = {
    "profile": _profile,
    "attributes": _attributes,
    "tier": _tier,
    "wallets": _wallet,
    "badges": _badges,
    "consents": _consent,
    "identities": _identity,
    "events": _events,
    "categories": _category,
    "traits": _trait,
}


def check_value(spec: FieldSpec, op: str, value: object) -> str | None:
    """Why ``op``/``value`` do not fit the field's kind, or None when they do."""
    if op not in OPS[spec.kind]:
        allowed = ", ".join(sorted(OPS[spec.kind]))
        return f"{spec.path} is {spec.kind}: its operators are {allowed}"
    if op == "exists":
        return None
    values = value if isinstance(value, tuple) else (value,)
    if spec.kind in ("text", "list") and not all(isinstance(v, str) for v in values):
        return f"{spec.path} is {spec.kind}: compare it with text"
    if spec.kind in ("number", "days") and not all(_is_number(v) for v in values):
        return f"{spec.path} is a number: compare it with numbers"
    out_of_range = _out_of_range(spec, values)
    if out_of_range is not None:
        return out_of_range
    if spec.kind == "days" and not all(isinstance(v, Decimal) and v == int(v) for v in values):
        return f"{spec.path} counts whole days: compare it with whole numbers"
    if spec.kind == "bool" and not isinstance(value, bool):
        return f"{spec.path} is true or false"
    if spec.kind == "json" and op in ("starts_with", "contains") and not isinstance(value, str):
        return f"{op} on {spec.path} takes text"
    ordered = op in ("lt", "lte", "gt", "gte", "between")
    if spec.kind == "json" and ordered and not all(_is_number(v) for v in values):
        return f"{op} on {spec.path} compares numbers (text is never ordered)"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, Decimal)


def _out_of_range(spec: FieldSpec, values: tuple[object, ...]) -> str | None:
    limit = MAX_DAYS if spec.kind == "days" else MAX_NUMBER
    for value in values:
        if not isinstance(value, Decimal):
            continue
        if not value.is_finite():
            return f"{spec.path}: compare it with a finite number"
        if abs(value) > limit:
            return f"{spec.path}: numbers are between -{limit} and {limit}"
    return None


def terms(spec: FieldSpec, op: str, value: object) -> int:
    """How many comparisons the SQL of one leaf chains (see :data:`MAX_TERMS`)."""
    if spec.kind == "days" and op in ("in", "not_in") and isinstance(value, tuple):
        return len(value)
    if spec.kind == "json" and op in ("contains", "in", "not_in", "eq", "ne"):
        return 2
    return 1


def is_operator_problem(spec: FieldSpec, op: str) -> bool:
    """Whether :func:`check_value`'s problem is the operator (else it is the value)."""
    return op not in OPS[spec.kind]
