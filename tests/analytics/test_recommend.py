"""Recommenders on known matrices (hand computations) and on the demo generator's data."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from fidelia.analytics import recommend as rc
from fidelia.demo import generator


def tiny() -> rc.Interactions:
    # Two worlds: members a, b, c buy {x, y}; d, e buy {p, q}; x is the most popular.
    rows = [("a", "x", 3), ("a", "y", 1), ("b", "x", 1), ("b", "y", 2), ("c", "x", 1),
            ("d", "p", 1), ("d", "q", 1), ("e", "p", 2), ("f", "x", 1)]  # fmt: skip
    return rc.Interactions.from_rows(rows)


def test_popularity_ranks_by_buyers() -> None:
    data = tiny()
    model = rc.fit("popularity", data)
    top = model.top(np.array([data.member_index["d"]]), 2)[0]
    assert [data.items[j] for j in top] == ["x", "p"]  # x: 4 buyers, p: 2 (p before q, y)
    assert model.reason(0, data.items.index("x")) == "popular: bought by 4 members"


def test_co_purchase_is_the_cosine_of_buyers() -> None:
    data = tiny()
    model = rc.fit("co_purchase", data)
    sim = model.state["similarity"].toarray()
    binary = (data.matrix.toarray() > 0).astype(float)
    norms = np.linalg.norm(binary, axis=0)
    assert np.allclose(sim, binary.T @ binary / np.outer(norms, norms))
    # c bought x only: y (bought with x by a and b) comes before anything of the other world.
    c = data.member_index["c"]
    top = [data.items[j] for j in model.top(np.array([c]), 2)[0]]
    assert top == ["x", "y"]
    assert model.reason(c, data.items.index("y")) == "often bought with x"
    e = data.member_index["e"]
    assert [data.items[j] for j in model.top(np.array([e]), 2)[0]] == ["p", "q"]


def test_als_separates_the_two_worlds() -> None:
    data = tiny()
    model = rc.fit("als", data, factors=4, iterations=30, regularization=0.01)
    d, c = data.member_index["d"], data.member_index["c"]
    assert {data.items[j] for j in model.top(np.array([d]), 2)[0]} == {"p", "q"}
    assert {data.items[j] for j in model.top(np.array([c]), 2)[0]} == {"x", "y"}


def test_evaluate_by_hand() -> None:
    data = tiny()
    model = rc.fit("popularity", data)
    # popularity top-2 for everyone: x, y (4 and 2 buyers; y before p by name at equal buyers?)
    top2 = [data.items[j] for j in model.top(np.array([0]), 2)[0]]
    test = {data.member_index["a"]: {data.items.index("x")},
            data.member_index["d"]: {data.items.index("q"), data.items.index(top2[1])}}  # fmt: skip
    got = rc.evaluate(model, test, k=2)
    # a: 1 hit of 2 -> p 0.5, r 1.0; d: 1 hit (top2[1]) of 2 -> p 0.5, r 0.5
    assert got.members == 2
    assert got.precision == pytest.approx(0.5)
    assert got.recall == pytest.approx(0.75)
    assert got.hit_rate == pytest.approx(1.0)


def test_split_last_holds_out_only_members_with_an_earlier_purchase() -> None:
    rows = [("a", "x", 2, 1), ("a", "y", 0, 1), ("b", "x", 0, 1)]
    train, test = rc.split_last(rows)
    a, b = train.member_index["a"], train.member_index["b"]
    assert train.matrix.toarray()[a].tolist() == [2.0, 0.0]
    assert train.matrix.toarray()[b].tolist() == [1.0, 0.0]  # b trains, is not evaluated
    assert test == {a: {0, 1}}


def generated_rows(item: str) -> list[tuple[str, str, float, float]]:
    config = generator.GeneratorConfig(members=1500, months=12, seed=7)
    purchases: dict[str, list[dict]] = defaultdict(list)
    for event in generator.generate_events(config):
        if event["type"] == "purchase":
            purchases[str(event["member"])].append(event)
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for member, events in purchases.items():
        events.sort(key=lambda e: (e["occurred_at"], e["id"]))
        for n, event in enumerate(events):
            for line in event["properties"]["lines"]:
                counts[(member, line[item])][1 if n == len(events) - 1 else 0] += 1
    return [(m, s, b, last) for (m, s), (b, last) in counts.items()]


def test_on_generated_data_the_default_beats_the_baseline() -> None:
    train, test = rc.split_last(generated_rows("sku"))
    assert len(test) > 1000
    results, best = rc.compare(train, test, k=5)
    by_kind = {r.kind: r for r in results}
    assert set(by_kind) == {"popularity", "co_purchase", "als"}
    assert best != "popularity"
    assert by_kind[best].precision > by_kind["popularity"].precision
    assert by_kind[best].recall > by_kind["popularity"].recall


def test_a_model_that_does_not_beat_popularity_is_not_the_default() -> None:
    # Everyone buys the same two items: nothing beats popularity, which stays the default.
    rows = [(f"m{i}", s, 1.0, 1.0) for i in range(30) for s in ("x", "y")]
    train, test = rc.split_last(rows)
    _, best = rc.compare(train, test, k=2)
    assert best == "popularity"
