"""The demo: time until `fidelia demo` is ready to serve, and its memory peak.

Runs `fidelia demo --reset --no-serve` (the default size: 300 members, 12 months) in its own
process on a fresh SQLite file, three times, and reports the wall time and the peak resident
memory of that process. The floor, measured in the same run, is `fidelia generate` of the same
data set: making the events without replaying them. The target is under 60 seconds on a 2-core
machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import baseline, emit, figure, log, quick_mode, stats

NAME = "demo"
FIDELIA = [sys.executable, "-c", "from fidelia.cli.main import app; app()"]


def run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    env = {**os.environ, "FIDELIA_DATABASE_URL": f"sqlite:///{cwd / 'demo.db'}"}
    started = time.perf_counter()
    proc = subprocess.Popen([*FIDELIA, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {status}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    runs = 1 if quick_mode() else 3
    members = "100" if quick_mode() else "300"
    ready, memory, floor = [], [], []
    with tempfile.TemporaryDirectory(prefix="fidelia-bench-demo-") as tmp:
        cwd = Path(tmp)
        for n in range(runs):
            log(f"demo run {n + 1}/{runs}")
            seconds, peak = run(["demo", "--reset", "--no-serve", "--members", members], cwd)
            ready.append(seconds)
            memory.append(peak)
            generated, _ = run(
                ["generate", "--members", members, "--out", str(cwd / "g.jsonl")], cwd
            )
            floor.append(generated)
    note = (
        f"{members} members, 12 months, SQLite; fidelia demo --reset --no-serve in its own process"
    )
    emit(
        NAME,
        [
            figure(
                "demo time to ready",
                stats(ready),
                unit="s",
                base=baseline(
                    "generating the same events (no replay)", stats(floor), unit="s", kind="floor"
                ),
                higher_is_better=False,
                note=note + "; target < 60 s",
            ),
            figure(
                "demo memory peak", stats(memory), unit="MiB", higher_is_better=False, note=note
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
