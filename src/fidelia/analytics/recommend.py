"""Next-best items: popularity, item-to-item co-purchase and implicit-feedback ALS (issue 15).

Pure functions on a member x item matrix of purchase counts (``scipy.sparse`` CSR), so that the
same code is trained from SQL aggregates (:mod:`fidelia.analytics.recommend_service`), from the
demo generator and from files (bench/bench_recommend.py).

- ``popularity``: items by the number of members who bought them (the baseline).
- ``co_purchase``: item-to-item cosine similarity of the binarised matrix; a member's score for
  an item is the sum of its similarities to the items they bought.
- ``als``: matrix factorisation for implicit feedback (Hu, Koren & Volinsky 2008) by the
  ``implicit`` library, confidence 1 + ``alpha`` x count.

Items already bought are recommended too (loyalty baskets repeat: pet food, strings, coffee);
:func:`evaluate` measures precision@k and recall@k on each evaluated member's held-out last
purchase.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

Kind = Literal["popularity", "co_purchase", "als"]
KINDS: tuple[Kind, ...] = ("popularity", "co_purchase", "als")


@dataclass(slots=True)
class Interactions:
    """Purchase counts: rows are members (``members[i]``), columns items (``items[j]``)."""

    matrix: sparse.csr_matrix
    members: list[Any]
    items: list[str]
    member_index: dict[Any, int] = field(default_factory=dict)

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[Any, str, float]], *, items: Sequence[str] | None = None,
        members: Sequence[Any] | None = None,
    ) -> Interactions:  # fmt: skip
        """From ``(member, item, count)``; given ``items``/``members`` fix the index order."""
        data = list(rows)
        member_list = (
            list(members) if members is not None else sorted({r[0] for r in data}, key=str)
        )
        item_list = list(items) if items is not None else sorted({r[1] for r in data})
        mi = {m: i for i, m in enumerate(member_list)}
        ii = {s: j for j, s in enumerate(item_list)}
        kept = [(mi[m], ii[s], float(n)) for m, s, n in data if m in mi and s in ii and n > 0]
        r = np.array([k[0] for k in kept], dtype=np.int64)
        c = np.array([k[1] for k in kept], dtype=np.int64)
        v = np.array([k[2] for k in kept], dtype=np.float64)
        shape = (len(member_list), len(item_list))
        matrix = sparse.csr_matrix((v, (r, c)), shape=shape)
        matrix.sum_duplicates()
        return cls(matrix, member_list, item_list, mi)


@dataclass(slots=True)
class Model:
    """A trained recommender: ``scores(rows)`` gives a dense (len(rows) x items) score block."""

    kind: Kind
    train: Interactions
    state: dict[str, Any]

    def scores(self, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        m = self.train.matrix
        if self.kind == "popularity":
            pop: NDArray[np.float64] = np.tile(self.state["popularity"], (len(rows), 1))
            return pop
        if self.kind == "co_purchase":
            bought = (m[rows] > 0).astype(np.float64)
            out: NDArray[np.float64] = np.asarray((bought @ self.state["similarity"]).todense())
            # ties (and members with nothing similar) fall back on popularity
            tied: NDArray[np.float64] = out + 1e-9 * self.state["popularity"]
            return tied
        users, items = self.state["user_factors"], self.state["item_factors"]
        scored: NDArray[np.float64] = users[rows] @ items.T
        return scored

    def top(self, rows: NDArray[np.int64], k: int) -> NDArray[np.int64]:
        """The ``k`` best item indices per row, best first."""
        s = self.scores(rows)
        k = min(k, s.shape[1])
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(s, part, axis=1).argsort(axis=1)[:, ::-1]
        best: NDArray[np.int64] = np.take_along_axis(part, order, axis=1)
        return best

    def reason(self, row: int, item: int) -> str:
        name = self.train.items[item]
        if self.kind == "popularity":
            return f"popular: bought by {int(self.state['buyers'][item])} members"
        if self.kind == "co_purchase":
            bought = self.train.matrix[row].indices
            if len(bought):
                sim = np.asarray(self.state["similarity"][bought, item].todense()).ravel()
                best = bought[int(sim.argmax())]
                if sim.max() > 0 and best != item:
                    return f"often bought with {self.train.items[best]}"
                if best == item:
                    return f"you bought {name} before"
            return f"popular: bought by {int(self.state['buyers'][item])} members"
        if item in set(self.train.matrix[row].indices.tolist()):
            return f"you bought {name} before; members who buy like you buy it again"
        return "members who buy like you bought it"


def _buyers(matrix: sparse.csr_matrix) -> NDArray[np.float64]:
    return np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()


def fit(
    kind: Kind, train: Interactions, *, factors: int = 32, iterations: int = 15,
    regularization: float = 0.05, alpha: float = 10.0, seed: int = 0,
) -> Model:  # fmt: skip
    """Train one model on ``train``."""
    buyers = _buyers(train.matrix)
    state: dict[str, Any] = {"buyers": buyers, "popularity": buyers / max(buyers.max(), 1.0)}
    if kind == "co_purchase":
        binary = (train.matrix > 0).astype(np.float64).tocsc()
        norms = np.sqrt(np.asarray(binary.multiply(binary).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        scaled = binary @ sparse.diags(1.0 / norms)
        state["similarity"] = (scaled.T @ scaled).tocsr()
    elif kind == "als":
        state.update(_als(train.matrix, factors, iterations, regularization, alpha, seed))
    return Model(kind, train, state)


def _als(
    matrix: sparse.csr_matrix, factors: int, iterations: int, regularization: float,
    alpha: float, seed: int,
) -> dict[str, Any]:  # fmt: skip
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    confidence = matrix.copy().astype(np.float32)
    confidence.data = 1.0 + alpha * np.log1p(confidence.data)
    model = AlternatingLeastSquares(
        factors=factors, regularization=regularization, iterations=iterations,
        random_state=seed, num_threads=1, calculate_training_loss=False,
    )  # fmt: skip
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # advice on BLAS threads, limited here
        model.fit(confidence.tocsr(), show_progress=False)
    return {
        "user_factors": np.asarray(model.user_factors, dtype=np.float64),
        "item_factors": np.asarray(model.item_factors, dtype=np.float64),
    }


@dataclass(frozen=True, slots=True)
class Evaluation:
    kind: str
    k: int
    members: int
    precision: float
    recall: float
    hit_rate: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "k": self.k, "members": self.members,
            "precision_at_k": round(self.precision, 6), "recall_at_k": round(self.recall, 6),
            "hit_rate": round(self.hit_rate, 6),
        }  # fmt: skip


def evaluate(model: Model, test: dict[int, set[int]], *, k: int, chunk: int = 2048) -> Evaluation:
    """Precision@k, recall@k and hit rate over the members of ``test`` (row -> held-out items)."""
    rows = np.array(sorted(test), dtype=np.int64)
    if len(rows) == 0:
        return Evaluation(model.kind, k, 0, 0.0, 0.0, 0.0)
    hits_p, hits_r, hit_any = 0.0, 0.0, 0
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        top = model.top(block, k)
        for row, best in zip(block.tolist(), top.tolist(), strict=True):
            held = test[row]
            n = len(held.intersection(best))
            hits_p += n / k
            hits_r += n / len(held)
            hit_any += n > 0
    m = len(rows)
    return Evaluation(model.kind, k, m, hits_p / m, hits_r / m, hit_any / m)


def split_last(
    rows: Iterable[tuple[Any, str, float, float]],
) -> tuple[Interactions, dict[int, set[int]]]:
    """From ``(member, item, count before the last purchase, count in the last purchase)``: the
    training matrix (everything but the evaluated members' last purchase) and the test set.
    A member is evaluated when they have a purchase before their last; a member with a single
    purchase trains the model (it is not held out)."""
    data = list(rows)
    has_earlier = {m for m, _, before, _ in data if before > 0}
    train_rows = []
    for m, item, before, last in data:
        n = before + (0 if m in has_earlier else last)
        if n > 0:
            train_rows.append((m, item, n))
    members = sorted({r[0] for r in data}, key=str)
    items = sorted({r[1] for r in data})
    train = Interactions.from_rows(train_rows, items=items, members=members)
    item_index = {s: j for j, s in enumerate(items)}
    test: dict[int, set[int]] = {}
    for m, item, _, last in data:
        if last > 0 and m in has_earlier:
            test.setdefault(train.member_index[m], set()).add(item_index[item])
    return train, test


def compare(
    train: Interactions, test: dict[int, set[int]], *, k: int = 5,
    kinds: Sequence[Kind] = KINDS,
) -> tuple[list[Evaluation], Kind]:  # fmt: skip
    """Evaluate every kind; the default is the best precision@k that beats popularity's, else
    popularity."""
    results = [evaluate(fit(kind, train), test, k=k) for kind in kinds]
    baseline = next((r for r in results if r.kind == "popularity"), None)
    best: Kind = "popularity"
    best_p = baseline.precision if baseline is not None else -1.0
    for r in results:
        if r.kind != "popularity" and r.precision > best_p:
            best, best_p = r.kind, r.precision  # type: ignore[assignment]
    return results, best
