"""Recommenders: training time and offline accuracy on the demo generator's data; on CDNOW
(which has no products) the accuracy of *whom* to target instead of *what* to offer.

Generated data (``--members``, 12 months, seed 42): every member's last purchase is held out;
the three models (popularity, co-purchase, ALS) are trained on the rest and scored by
precision@5, recall@5 and hit rate, for SKUs and for categories. Timed: each model's training
on the SKU matrix (median of runs), against the popularity baseline (a column count).

CDNOW (whole cohort, 39-week calibration): of the 10 % of customers a model ranks first, the
share who buy in the 39-week holdout (precision@k over customers) and the share of all holdout
buyers they hold (recall@k): BG/NBD expected purchases vs the naive baseline "most calibration
purchases first" (ties: most recent first).

    python bench/bench_recommend.py [--members 2000] [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

import numpy as np

from bench.bench_clv import DATA, END, load
from bench.common import baseline, emit, figure, log, quick_mode, stats
from fidelia.analytics import clv
from fidelia.analytics import recommend as rc
from fidelia.demo import generator

NAME = "recommend"


def generated(members: int, item: str) -> list[tuple[str, str, float, float]]:
    config = generator.GeneratorConfig(members=members, months=12, seed=42)
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


def targeting(notes: list[str]) -> None:
    if not (DATA / "cdnow_master.txt").exists():
        return
    rfm, holdout = clv.rfm_from_transactions(load("cdnow_master.txt"), END)
    bought = np.array([holdout[c] > 0 for c in rfm.ids])
    bg = clv.fit_bgnbd(rfm)
    k = len(rfm) // 10
    model = bg.expected_purchases(39.0, rfm.x, rfm.t_x, rfm.T)
    naive = rfm.x * 1000 + rfm.t_x  # most purchases first, then most recent
    for label, score in (("BG/NBD expected purchases", model), ("frequency then recency", naive)):
        top = np.argsort(-score, kind="stable")[:k]
        notes.append(
            f"CDNOW targeting, top {k} of {len(rfm)} customers by {label}: "
            f"precision {bought[top].mean():.3f}, recall {bought[top].sum() / bought.sum():.3f} "
            f"(base rate {bought.mean():.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    runs = 2 if quick else args.runs
    members = 500 if quick else args.members
    warnings.simplefilter("ignore", RuntimeWarning)
    figures, notes = [], []
    for item in ("sku", "category"):
        train, test = rc.split_last(generated(members, item))
        results, best = rc.compare(train, test, k=5)
        for r in results:
            notes.append(
                f"generated {members} members, {item} ({len(train.items)} items, "
                f"{r.members} evaluated): {r.kind} precision@5 {r.precision:.4f} "
                f"recall@5 {r.recall:.4f} hit rate {r.hit_rate:.4f}"
                + (" (default)" if r.kind == best else "")
            )
        if item != "sku":
            continue
        times: dict[str, list[float]] = {kind: [] for kind in rc.KINDS}
        for _ in range(runs):
            for kind in rc.KINDS:
                t = time.perf_counter()
                rc.fit(kind, train)
                times[kind].append(time.perf_counter() - t)
        base = baseline("popularity (column count)", stats(times["popularity"]), unit="s",
                        kind="floor")  # fmt: skip
        for kind in ("co_purchase", "als"):
            log(f"{kind}: {np.median(times[kind]):.3f} s")
            figures.append(figure(f"train {kind}, {len(train.members)} members x "
                                  f"{len(train.items)} SKUs", stats(times[kind]), unit="s",
                                  base=base, higher_is_better=False))  # fmt: skip
    targeting(notes)
    emit(NAME, figures, notes=notes)


if __name__ == "__main__":
    main()
