"""CLV fits on CDNOW: BG/NBD and Gamma-Gamma maximum likelihood on the 2,357-customer sample and
on the whole 23,570-customer cohort (39-week calibration), from the per-customer summaries.

Timed (each run): ``clv.fit_bgnbd`` and ``clv.fit_gamma_gamma`` on summaries already computed
(what the programme path gets from its one SQL query). The reference: one evaluation of the
vectorised BG/NBD log-likelihood over the same customers (a fit is a few dozen of those). Goals
(issue 15): sample under 1 s, cohort under 5 s. Notes: the parameters and the holdout accuracy.

*Programme path* (not with ``--quick``): the whole cohort imported as 69,659 purchase events
into a programme (SQLite and PostgreSQL), then ``clv_service.fit`` as ``GET /analytics/clv``
runs it: the grouped SQL query for the per-member figures, then both fits and the scores. The
reference: ``SELECT member_id, COUNT(*) ... GROUP BY member_id`` over the same purchases.

    python bench/bench_clv.py [--runs 7] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

import numpy as np

from bench.common import ROOT, baseline, emit, figure, log, quick_mode, stats
from fidelia.analytics import clv

NAME = "clv"
DATA = ROOT.parent / "shared" / "data"
END = date(1997, 9, 30)


def load(name: str) -> list[tuple[str, date, float]]:
    sample = name == "cdnow_sample.txt"
    rows = []
    for line in (DATA / name).read_text(encoding="ascii").splitlines():
        p = line.split()
        if not p or not p[0].isdigit():
            continue
        cid, day, value = (p[0], p[2], p[4]) if sample else (p[0], p[1], p[3])
        rows.append((cid, datetime.strptime(day, "%Y%m%d").date(), float(value)))  # noqa: DTZ007
    return rows


def programme_path(runs: int, figures: list, skipped: list, tmp: Path) -> None:
    from sqlalchemy import text

    from bench.common import database_url, postgres_available
    from fidelia.analytics import clv_service
    from fidelia.db import Database
    from fidelia.intake.imports import run_import
    from fidelia.migrations import upgrade
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    path = DATA / "cdnow_master.txt"
    for backend in ("sqlite", "postgresql"):
        if backend == "postgresql" and not postgres_available():
            skipped.append({"figure": "programme path, PostgreSQL", "reason": "no PostgreSQL"})
            continue
        with database_url(backend, tmp) as url:
            database = Database.from_url(url)
            upgrade(database.engine)
            with database.transaction() as session:
                programme = programmes.create(session, data=ProgrammeCreate(
                    slug="cdnow", name="CDNOW", currency="USD", timezone="America/New_York",
                    locale="en-US", country="US"))  # fmt: skip
            log(f"{backend}: importing the whole cohort")
            run_import(database, programme_id=programme.id, path=path, kind="events",
                       fmt="cdnow", chunk_size=2000, enrol_unknown="active",
                       rejects_path=tmp / "rejects.csv")  # fmt: skip
            fits, floors = [], []
            reference = text("SELECT member_id, COUNT(*) FROM events WHERE type = 'purchase' "
                             "GROUP BY member_id")  # fmt: skip
            for _ in range(runs):
                with database.transaction(readonly=True) as session:
                    t = time.perf_counter()
                    session.execute(reference).all()
                    floors.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    clv_service.fit(session, programme=programme, as_of=date(1997, 10, 1))
                    fits.append(time.perf_counter() - t)
            database.dispose()
            label = "SQLite" if backend == "sqlite" else "PostgreSQL"
            log(f"{label}: fit from the events {np.median(fits):.3f} s")
            figures.append(figure(
                f"CLV of a programme from its events (SQL figures + fits), 23,570 members, {label}",
                stats(fits), unit="s", higher_is_better=False,
                base=baseline("purchases GROUP BY member_id", stats(floors), unit="s",
                              kind="floor"),
                note="69,659 purchase events; what GET /analytics/clv computes",
            ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 3 if quick_mode(args.quick) else args.runs
    figures, notes, skipped = [], [], []
    for label, name in (("sample, 2,357 customers", "cdnow_sample.txt"),
                        ("whole cohort, 23,570 customers", "cdnow_master.txt")):  # fmt: skip
        if not (DATA / name).exists():
            skipped.append({"figure": label, "reason": f"{name} absent"})
            continue
        rfm, holdout = clv.rfm_from_transactions(load(name), END)
        fits, lls = [], []
        for _ in range(runs):
            t = time.perf_counter()
            bg = clv.fit_bgnbd(rfm)
            gg = clv.fit_gamma_gamma(rfm)
            fits.append(time.perf_counter() - t)
            t = time.perf_counter()
            clv.bgnbd_log_likelihood(np.array([bg.r, bg.alpha, bg.a, bg.b]), rfm.x, rfm.t_x, rfm.T)
            lls.append(time.perf_counter() - t)
        log(f"{label}: fit median {np.median(fits):.3f} s")
        figures.append(figure(
            f"BG/NBD + Gamma-Gamma fit, {label}", stats(fits), unit="s", higher_is_better=False,
            base=baseline("one BG/NBD log-likelihood evaluation", stats(lls), unit="s",
                          kind="floor"),
            note="goal < 1 s" if "sample" in label else "goal < 5 s",
        ))  # fmt: skip
        actual = np.array([holdout[c] for c in rfm.ids], dtype=float)
        report = clv.holdout_report(bg, rfm, actual, 39.0)
        notes.append(
            f"{label}: r={bg.r:.3f} alpha={bg.alpha:.3f} a={bg.a:.3f} b={bg.b:.3f} "
            f"LL={bg.log_likelihood:.1f}; p={gg.p:.2f} q={gg.q:.2f} gamma={gg.gamma:.2f}; "
            f"holdout (39 weeks) repeat purchase days predicted {report.predicted_total:.0f} vs "
            f"actual {report.actual_total}, per-customer MAE {report.per_customer_mae:.3f}, "
            f"correlation {report.correlation:.3f}"
        )
    if not quick_mode(args.quick) and (DATA / "cdnow_master.txt").exists():
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            programme_path(runs, figures, skipped, Path(tmp))
    emit(NAME, figures, notes=notes, skipped=skipped)


if __name__ == "__main__":
    main()
