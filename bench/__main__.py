"""Run every benchmark of the project and print (or write) the table of figures.

    python -m bench                          # every bench/bench_*.py, then the table
    python -m bench --only import            # one benchmark (bench_import.py); repeatable
    python -m bench --quick                  # short runs, to check that everything works
    python -m bench --write docs/benchmarks.md   # rewrite the generated section of that file

Each ``bench/bench_*.py`` runs as a subprocess (a fresh interpreter, in its own process group)
with a time limit (``--timeout``, default 30 minutes), from the repository root with
``PYTHONPATH`` set to it. Its progress goes to stderr, which is shown as it runs.

The contract for a benchmark script
-----------------------------------
- Run standalone (``python bench/bench_NAME.py``) with no arguments needed, in bounded time,
  addressing only 127.0.0.1. ``FIDELIA_BENCH_QUICK=1`` in the environment asks for a short run;
  ``FIDELIA_BENCH_DATABASE_URL`` names the PostgreSQL server to create scratch databases on
  (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
- Print ONE JSON object on the LAST line of stdout (anything before it is ignored)::

    {"name": "import",
     "figures": [{"figure": "CDNOW import, SQLite", "unit": "events/s",
                  "median": 2000.0, "min": 1900.0, "max": 2100.0, "runs": 3,
                  "higher_is_better": true,
                  "baseline": {"kind": "ceiling", "label": "bare-table executemany",
                               "unit": "rows/s", "median": 40000.0, "min": 38000.0,
                               "max": 41000.0},
                  "ratio": 0.05,
                  "note": "free text"}],
     "notes": ["optional free text"],
     "skipped": [{"figure": "...", "reason": "..."}]}

  ``baseline`` (a ceiling, a floor or a reference measured in the same run), ``ratio``
  (median / baseline median; computed here when left out), ``runs``, ``higher_is_better``,
  ``note``, ``notes`` and ``skipped`` are optional. ``bench/common.py`` has the helpers
  (``stats``, ``figure``, ``baseline``, ``emit``) and more detail.
- Exit with status 0 when the figures are good; a non-zero status or a missing result line
  is reported as a failure of that benchmark (the others still run).

With ``--write``, the generated section of the file (between ``<!-- bench:start -->`` and
``<!-- bench:end -->``) is replaced; the raw results are kept in it as a comment, so that
``--only NAME --write`` updates that benchmark's rows and keeps the others.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import PG_ENV, QUICK_ENV, ROOT, machine

HERE = Path(__file__).resolve().parent
START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
DASH = "\u2013"  # en dash, for ranges
DATA = re.compile(r"<!-- bench:data (.*?) -->", re.DOTALL)

Result = dict[str, Any]


def discover() -> dict[str, Path]:
    """``{"import": bench/bench_import.py, ...}`` for every benchmark script."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def run_one(name: str, path: Path, *, quick: bool, timeout: float) -> Result:
    """Run one script; its result object, or a failure record."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if quick:
        env[QUICK_ENV] = "1"
    print(f"== {name} ({path.relative_to(ROOT)}), limit {timeout:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends the servers it started
    )
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return _failure(name, f"timed out after {timeout:.0f} s", started)
    seconds = time.perf_counter() - started
    lines = [line for line in stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        return _failure(name, f"exit status {proc.returncode}", started)
    try:
        result = json.loads(lines[-1])
        if not isinstance(result, dict) or not isinstance(result.get("figures"), list):
            raise ValueError("not a result object")
    except (IndexError, ValueError) as exc:
        return _failure(name, f"no JSON result on the last stdout line ({exc})", started)
    result.setdefault("name", name)
    result["script"] = name
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    result["seconds"] = round(seconds, 1)
    result["quick"] = quick
    for fig in result["figures"]:
        base = fig.get("baseline")
        if fig.get("ratio") is None and base and base.get("median"):
            fig["ratio"] = fig["median"] / base["median"]
    print(f"== {name}: {len(result['figures'])} figures in {seconds:.0f} s", file=sys.stderr)
    return result


def _kill_group(proc: subprocess.Popen[str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure(name: str, reason: str, started: float) -> Result:
    print(f"== {name}: FAILED: {reason}", file=sys.stderr)
    return {
        "name": name,
        "script": name,
        "figures": [],
        "failed": reason,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- the table ----------------------------------------------------------------------------------


def number(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def baseline_cell(base: dict[str, Any] | None) -> str:
    if not base:
        return ""
    return f"{base.get('kind', 'ceiling')}: {base.get('label', '')}, {number(base['median'])} " + (
        base.get("unit") or ""
    )


def ratio_cell(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}"


def machine_line(info: dict[str, Any]) -> str:
    parts = [
        f"{info.get('cpu')}, {info.get('cores')} cores, {info.get('ram_gib')} GiB RAM",
        f"{info.get('os')}",
        f"Python {info.get('python')}",
        f"SQLite {info.get('sqlite')}",
        f"PostgreSQL {info.get('postgresql') or 'not available'}",
    ]
    return "; ".join(parts)


def render(results: list[Result], info: dict[str, Any]) -> str:
    dates = sorted({r["date"] for r in results})
    out = [
        f"Machine: {machine_line(info)}.  ",
        f"Date: {dates[-1] if len(dates) == 1 else dates[0] + ' to ' + dates[-1]}.",
        "",
        f"| benchmark | figure | median | min{DASH}max | ceiling / floor | ratio |",
        "| --- | --- | ---: | ---: | --- | ---: |",
    ]
    notes: list[str] = []
    problems: list[str] = []
    for result in results:
        name = str(result.get("name", result["script"]))
        if result.get("quick"):
            problems.append(f"- **{name}**: a --quick run (short, fewer repetitions)")
        if result.get("failed"):
            problems.append(f"- **{name}** failed: {result['failed']}")
        for skip in result.get("skipped", []):
            problems.append(f"- **{name}**: skipped {skip.get('figure')}: {skip.get('reason')}")
        for fig in result["figures"]:
            unit = fig.get("unit", "")
            spread = f"{number(fig['min'])}{DASH}{number(fig['max'])}"
            runs = fig.get("runs")
            if runs:
                spread += f" ({runs})"
            out.append(
                "| "
                + " | ".join(
                    cell(c)
                    for c in (
                        name,
                        str(fig["figure"]),
                        f"{number(fig['median'])} {unit}",
                        spread,
                        baseline_cell(fig.get("baseline")),
                        ratio_cell(fig.get("ratio")),
                    )
                )
                + " |"
            )
            if fig.get("note"):
                notes.append(f"- {name} / {fig['figure']}: {fig['note']}")
        notes.extend(f"- {name}: {n}" for n in result.get("notes", []))
    out.append("")
    out.append(
        f"min{DASH}max: over the measurements (their number in brackets); ratio: median / baseline "
        "median."
    )
    if notes:
        out += ["", "Notes:", "", *notes]
    if problems:
        out += ["", "Caveats:", "", *problems]
    return "\n".join(out) + "\n"


# -- the docs file ------------------------------------------------------------------------------


def stored_results(text: str) -> list[Result]:
    match = DATA.search(text)
    if not match:
        return []
    try:
        data = json.loads(match.group(1))
    except ValueError:
        return []
    return list(data.get("results", []))


def write(path: Path, results: list[Result], info: dict[str, Any]) -> None:
    """Replace the generated section of ``path``; results of benchmarks not run are kept."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        old, tail = rest.split(END, 1)
    else:
        head, old, tail = text.rstrip("\n") + "\n\n", "", "\n"
    fresh = {r["script"] for r in results}
    merged = [r for r in stored_results(old) if r.get("script") not in fresh] + results
    merged.sort(key=lambda r: str(r.get("script")))
    payload = json.dumps({"machine": info, "results": merged}, separators=(",", ":"))
    payload = payload.replace("--", "-\\u002d")  # "--" may not appear inside an HTML comment
    section = (
        f"{START}\n<!-- generated by `python -m bench --write {path}`; edit outside the "
        f"markers -->\n\n{render(merged, info)}\n<!-- bench:data {payload} -->\n{END}"
    )
    path.write_text(head + section + tail, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this one")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per benchmark")
    parser.add_argument("--write", type=Path, metavar="FILE", help="rewrite FILE's bench section")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save the raw results")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    scripts = discover()
    if args.list:
        print("\n".join(scripts))
        return 0
    if args.only:
        wanted = [n.removeprefix("bench_").removesuffix(".py") for n in args.only]
        unknown = [n for n in wanted if n not in scripts]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(scripts)}")
        scripts = {n: scripts[n] for n in wanted}
    if os.environ.get(PG_ENV) is None:
        print(f"{PG_ENV} not set: PostgreSQL at the default address", file=sys.stderr)
    results = [
        run_one(name, path, quick=args.quick, timeout=args.timeout)
        for name, path in scripts.items()
    ]
    info = machine()
    print(render(results, info))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    if args.write:
        write(args.write, results, info)
    return 1 if any(r.get("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
