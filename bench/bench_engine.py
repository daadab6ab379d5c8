"""The earning engine alone, single core, on the real CDNOW purchase log (69,659 purchases).

Figures, each the median (min-max) of several runs in this one process:

- ``evaluate``: events/s of :func:`fidelia.rules.engine.evaluate` with the demo programme
  (15 rules), each event seeing the member state it would have had (states are built in a
  first, untimed pass, so only the engine is timed);
- ``evaluate + apply_event``: the same plus maintaining the member state, i.e. what the
  service layer does per event besides I/O;
- the floor for both: a plain Python loop over the same events that looks up the member and
  reads the event, with no evaluation;
- the back-test of CDNOW under two programmes (demo as baseline, a variant as candidate), in
  seconds, loading the file excluded (reported separately).

Run: ``python bench/bench_engine.py [--runs 5] [--quick]``; the last stdout line is the JSON
object of the bench contract (``bench/common.py``).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from bench.common import ROOT, Stats, baseline, emit, figure, log, machine, quick_mode, stats
from fidelia.rules.backtest import backtest, load_cdnow
from fidelia.rules.demo import demo_document, demo_rules
from fidelia.rules.engine import CompiledProgramme, compile_programme, evaluate
from fidelia.rules.state import (
    EngineEvent,
    MemberState,
    ProgrammeCounters,
    apply_event,
    record_counters,
)

CDNOW = ROOT.parent / "shared" / "data" / "cdnow_master.txt"
Events = list[tuple[str, EngineEvent]]


def candidate() -> CompiledProgramme:
    """The demo programme with Bronze at 1.5 points per euro and a 3x happy hour."""
    doc = demo_document()
    for rule in doc["rules"]:
        if rule["id"] == "base-earn":
            rule["award"]["rate"] = 1.5
            rule["award"]["rate_by_tier"]["bronze"] = 1.5
        if rule["id"] == "happy-hour-music":
            rule["award"]["multiplier"] = 3
    return compile_programme(doc)


def states_before(events: Events, prog: CompiledProgramme) -> list[MemberState]:
    """The state each member had just before each event (untimed preparation)."""
    states: dict[str, MemberState] = {}
    counters, before = ProgrammeCounters(), []
    empty = MemberState()
    for member, event in events:
        state = states.get(member, empty)
        before.append(state)
        result = evaluate(event, state, prog, counters, event.occurred_at)
        record_counters(counters, result, state)
        states[member] = apply_event(state, event, result, prog)
    return before


def floor_loop(events: Events, _prog: CompiledProgramme, _before: list[MemberState]) -> None:
    """No evaluation: walk the events, look the member up, read the event."""
    states: dict[str, MemberState] = {}
    empty = MemberState()
    for member, event in events:
        state = states.get(member, empty)
        states[member] = state if event.occurred_at else empty


def evaluate_only(events: Events, prog: CompiledProgramme, before: list[MemberState]) -> None:
    counters = ProgrammeCounters()
    for (_, event), state in zip(events, before, strict=True):
        evaluate(event, state, prog, counters, event.occurred_at)


def evaluate_and_apply(events: Events, prog: CompiledProgramme, _: list[MemberState]) -> None:
    states: dict[str, MemberState] = {}
    counters, empty = ProgrammeCounters(), MemberState()
    for member, event in events:
        state = states.get(member, empty)
        result = evaluate(event, state, prog, counters, event.occurred_at)
        record_counters(counters, result, state)
        states[member] = apply_event(state, event, result, prog)


CPU_SECONDS: dict[str, float] = {}  # median process CPU time per timed label, for the notes


def timed(fn: Callable[[], Any], runs: int, label: str = "") -> list[float]:
    """Wall-clock seconds of ``runs`` calls, with the garbage collector out of the way.

    The median CPU time of this process is kept in :data:`CPU_SECONDS`: on a shared machine
    it shows how much of the wall time was spent waiting for a core.
    """
    out, cpu = [], []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        out.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        gc.enable()
    if label:
        CPU_SECONDS[label] = sorted(cpu)[len(cpu) // 2]
    return out


def rate(n: int, seconds: list[float]) -> Stats:
    """Events per second from durations (the slowest run gives the min)."""
    return stats([n / s for s in seconds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    runs = 2 if quick else args.runs
    if not CDNOW.exists():
        emit("engine", [], skipped=[{"figure": "all", "reason": f"{CDNOW} not found"}])
        return
    load = timed(lambda: list(load_cdnow(CDNOW)), 1 if quick else 3)
    events = list(load_cdnow(CDNOW))
    if quick:
        events = events[:10_000]
    demo, variant = compile_programme(demo_rules()), candidate()
    log(f"{len(events)} events; preparing member states")
    before = states_before(events, demo)
    figures_out = []
    floor = rate(len(events), timed(lambda: floor_loop(events, demo, before), runs, "floor"))
    floor_base = baseline("plain loop over the same events", floor, unit="events/s", kind="floor")
    for label, fn in (("evaluate", evaluate_only), ("evaluate + apply_event", evaluate_and_apply)):
        log(f"timing {label}")
        measured = rate(len(events), timed(partial(fn, events, demo, before), runs, label))
        figures_out.append(
            figure(f"engine, demo programme on CDNOW: {label}", measured, unit="events/s",
                   base=floor_base, note="single core; 15 rules; states as they were")
        )  # fmt: skip
    load_base = baseline("loading the CDNOW file", stats(load), unit="s", kind="reference")
    for parallel in (False, True):
        log(f"timing the back-test, parallel={parallel}")
        back = stats(
            timed(
                partial(backtest, events, demo, variant, parallel=parallel),
                max(1, runs - 2),
                f"back-test parallel={parallel}",
            )
        )
        how = "baseline in a forked process" if parallel else "one process"
        figures_out.append(
            figure(f"back-test of CDNOW under two programmes ({how})", back, unit="s",
                   higher_is_better=False, base=load_base,
                   note=f"{len(events)} purchases x 2 programmes, in memory; file load excluded")
        )  # fmt: skip
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else None
    emit(
        "engine",
        figures_out,
        notes=[
            f"machine: {machine()}",
            f"load average at the end: {load_avg}",
            "median CPU seconds of this process per run (parallel: parent only): "
            + ", ".join(f"{k} {v:.3f}" for k, v in CPU_SECONDS.items()),
        ],
    )


if __name__ == "__main__":
    main()
