"""The SQL compiler and the Python evaluator agree: same members for any condition, any data.

Hypothesis draws a small population (profiles, custom attributes of every JSON type, tiers,
balances, badges, consents, identities, events with categories at various ages) and a list of
conditions over every field kind, then compares the members each evaluator puts in each
condition's segment.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.conditions import parse_condition
from fidelia.models import (
    Account,
    Consent,
    Event,
    Member,
    MemberBadge,
    MemberIdentity,
    MemberTier,
    Wallet,
)
from fidelia.segments import summaries
from fidelia.segments.compiler import Catalogue, SqlCompiler, check_condition
from fidelia.segments.evaluate import evaluate
from tests.fixtures.factories import make_programme

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CATEGORIES = ("cat-food", "dog-food", "books")
ATTRIBUTE_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["cat", "dog", "Cat", "catnip", ""]),
    st.integers(-2, 3),
    st.sampled_from([0.5, 1.0, 2.5]),
    st.booleans(),
    st.lists(st.sampled_from(["cat", "dog", 1]), max_size=3),
    st.just({"cat": 1}),
)

member_strategy = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["active", "active", "prospect", "suspended", "closed"]),
        "postal_code": st.sampled_from([None, "69001", "69002", "75011"]),
        "birth": st.one_of(st.none(), st.dates(date(1950, 1, 1), date(2005, 12, 31))),
        "enrolled_days": st.integers(0, 800),
        "enrolled_seconds": st.integers(0, 86399),
        "attrs": st.dictionaries(st.sampled_from(["species", "visits"]), ATTRIBUTE_VALUES),
        "tier": st.sampled_from([None, "bronze", "silver"]),
        "points": st.one_of(st.none(), st.integers(0, 500)),
        "cashback": st.one_of(st.none(), st.integers(0, 3000)),  # cents
        "badges": st.lists(st.sampled_from(["recycler", "reviewer"]), unique=True),
        "consents": st.dictionaries(st.sampled_from(["email", "sms"]), st.booleans()),
        "identities": st.lists(st.sampled_from(["email", "phone", "card"]), unique=True),
        "events": st.lists(
            st.tuples(
                st.sampled_from(["purchase", "purchase", "review"]),
                st.integers(-2, 400),  # days ago (negative: in the future)
                st.integers(0, 86399),
                st.lists(st.sampled_from([*CATEGORIES, None]), min_size=1, max_size=3),
            ),
            max_size=6,
        ),
    }
)

NUMBER_FIELDS = [
    "profile.birth_month", "wallets.points", "wallets.cashback", "events.purchase.count",
    "events.purchase.count_30d", "events.review.count_90d", "categories.cat-food.count_60d",
    "categories.books.count", "attributes.visits", "attributes.species",
]  # fmt: skip
DAYS_FIELDS = ["profile.days_since_enrolment", "events.purchase.days_since_last"]
TEXT_FIELDS = ["profile.status", "profile.postal_code", "tier"]
EXISTING = [
    "attributes.species", "attributes.visits", "tier", "consents.sms", "profile.postal_code",
    "events.purchase.days_since_last", "profile.birth_month",
]  # fmt: skip
TEXTS = ["active", "prospect", "69001", "690", "bronze", "silver", "cat", "c", ""]


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    number = st.one_of(st.integers(-1, 12), st.sampled_from([0.5, 2.5, 10.5]))
    numbers = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from(NUMBER_FIELDS),
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
        number,
    )
    ranges = st.builds(
        lambda f, a, b: {"field": f, "op": "between", "value": [min(a, b), max(a, b)]},
        st.sampled_from(NUMBER_FIELDS + DAYS_FIELDS),
        st.integers(0, 40),
        st.integers(0, 400),
    )
    days = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from(DAYS_FIELDS),
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
        st.sampled_from([0, 1, 2, 29, 30, 31, 90, 365]),
    )
    sets = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from(NUMBER_FIELDS + DAYS_FIELDS),
        st.sampled_from(["in", "not_in"]),
        st.lists(st.integers(0, 5), min_size=1, max_size=3),
    )
    texts = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from([*TEXT_FIELDS, "attributes.species"]),
        st.sampled_from(["eq", "ne", "starts_with", "contains"]),
        st.sampled_from(TEXTS),
    )
    mixed = st.one_of(
        st.builds(
            lambda op, v: {"field": "attributes.species", "op": op, "value": v},
            st.sampled_from(["eq", "ne"]),
            st.sampled_from([True, False, 1, 0, 2.5, "cat"]),
        ),
        st.builds(
            lambda op, v: {"field": "attributes.species", "op": op, "value": v},
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(["cat", "dog", 1, 0, True, 2.5]), min_size=1, max_size=3),
        ),
    )
    exist = st.builds(
        lambda f, v: {"field": f, "op": "exists", "value": v},
        st.sampled_from(
            [
                "attributes.species",
                "attributes.visits",
                "tier",
                "consents.sms",
                "profile.postal_code",
                "events.purchase.days_since_last",
                "profile.birth_month",
            ]
        ),
        st.booleans(),
    )
    flags = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from(["consents.email", "consents.sms", "identities.email", "identities.phone"]),
        st.sampled_from(["eq", "ne"]),
        st.booleans(),
    )
    badges = st.builds(
        lambda v: {"field": "badges", "op": "contains", "value": v},
        st.sampled_from(["recycler", "reviewer", "none"]),
    )
    return st.one_of(numbers, ranges, days, sets, texts, mixed, exist, flags, badges)


def conditions_of(
    leaf: st.SearchStrategy[dict[str, Any]], *, max_leaves: int
) -> st.SearchStrategy[dict[str, Any]]:
    """Conditions built of ``leaf`` under all / any / not, up to ``max_leaves`` leaves."""
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.builds(lambda c: {"all": c}, st.lists(kids, min_size=1, max_size=3)),
            st.builds(lambda c: {"any": c}, st.lists(kids, min_size=1, max_size=3)),
            st.builds(lambda c: {"not": c}, kids),
        ),
        max_leaves=max_leaves,
    )


condition_strategy = conditions_of(_leaf(), max_leaves=5)


def _setup(database: Database, people: list[dict[str, Any]]) -> tuple[Any, Catalogue]:
    programme = make_programme(database)
    with database.transaction() as session:
        wallets = {
            w.code: w
            for w in session.scalars(select(Wallet).where(Wallet.programme_id == programme.id))
        }
        points, cash = wallets["points"], wallets["cashback"]
        assert (points.scale, cash.scale) == (0, 2)
        for person in people:
            _write_member(session, programme.id, person, points.id, cash.id)
        # events written around the intake: their summaries are rebuilt, as after an import
        summaries.rebuild(session, programme_id=programme.id)
        catalogue = Catalogue(
            wallets={"points": (points.id, 0), "cashback": (cash.id, 2)},
            categories=frozenset(CATEGORIES),
        )
    return programme, catalogue


def _write_member(
    session: Any, programme_id: uuid.UUID, p: dict[str, Any], points: uuid.UUID, cash: uuid.UUID
) -> None:
    enrolled = NOW - timedelta(days=p["enrolled_days"], seconds=p["enrolled_seconds"])
    member = Member(
        programme_id=programme_id, status=p["status"], enrolment_channel="store",
        enrolled_at=enrolled, postal_code=p["postal_code"], birth_date=p["birth"],
        attributes=p["attrs"],
    )  # fmt: skip
    session.add(member)
    session.flush()
    mid = member.id
    if p["tier"]:
        session.add(
            MemberTier(
                member_id=mid, programme_id=programme_id, tier=p["tier"], since=NOW, metrics={}
            )
        )
    for wallet, amount in ((points, p["points"]), (cash, p["cashback"])):
        if amount is not None:
            session.add(Account(programme_id=programme_id, wallet_id=wallet, member_id=mid,
                                kind="member", available=amount))  # fmt: skip
    for badge in p["badges"]:
        session.add(MemberBadge(programme_id=programme_id, member_id=mid, badge=badge, level=1,
                                earned_at=NOW, source="condition"))  # fmt: skip
    for channel, granted in p["consents"].items():
        session.add(Consent(programme_id=programme_id, member_id=mid, channel=channel,
                            granted=granted, changed_at=NOW, source="test"))  # fmt: skip
    for kind in p["identities"]:
        session.add(MemberIdentity(programme_id=programme_id, member_id=mid, kind=kind,
                                   value=f"{kind}-{uuid.uuid4().hex}"))  # fmt: skip
    for kind, days, seconds, categories in p["events"]:
        lines = [{"sku": f"s{i}", "category": c} if c else {"sku": f"s{i}"}
                 for i, c in enumerate(categories)]  # fmt: skip
        session.add(
            Event(
                programme_id=programme_id,
                idempotency_key=uuid.uuid4().hex,
                fingerprint="x",
                type=kind,
                occurred_at=NOW - timedelta(days=days, seconds=seconds),
                member_id=mid,
                properties={"lines": lines} if kind == "purchase" else {},
                outcome={},
            )
        )
    session.flush()


@pytest.mark.xdist_group("segments-property")
@settings(
    max_examples=int(os.environ.get("FIDELIA_SEGMENT_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(member_strategy, min_size=1, max_size=8),
    raws=st.lists(condition_strategy, min_size=1, max_size=4),
)
def test_sql_and_python_give_the_same_members(
    database: Database, people: list[dict[str, Any]], raws: list[dict[str, Any]]
) -> None:
    programme, catalogue = _setup(database, people)
    conditions = {f"c{i}": parse_condition(raw) for i, raw in enumerate(raws)}
    for cond in conditions.values():
        check_condition(cond, catalogue)
    dialect = database.engine.dialect.name
    with database.transaction(readonly=True) as session:
        by_sql: dict[str, set[uuid.UUID]] = {}
        for code, cond in conditions.items():
            compiler = SqlCompiler(
                programme_id=programme.id, catalogue=catalogue, now=NOW, dialect=dialect
            )
            by_sql[code] = set(session.scalars(compiler.members_query(cond)))
            # the live path's form: instants and member ids as parameters of a kept statement
            kept = SqlCompiler(
                programme_id=programme.id,
                catalogue=catalogue,
                now=NOW,
                dialect=dialect,
                member_ids=(),
                parametric=True,
            )
            query = kept.members_query(cond)
            everyone = session.scalars(select(Member.id).where(Member.programme_id == programme.id))
            params = kept.params(NOW, list(everyone))
            assert set(session.scalars(query, params)) == by_sql[code], raws
        by_python: dict[str, set[uuid.UUID]] = {code: set() for code in conditions}
        members = session.scalars(select(Member).where(Member.programme_id == programme.id))
        for member in members:
            found = evaluate(
                session, member=member, conditions=conditions, catalogue=catalogue, now=NOW
            )
            for code in found:
                by_python[code].add(member.id)
    for code, raw in zip(conditions, raws, strict=True):
        assert by_sql[code] == by_python[code], raw
