"""Reading records from CSV and JSON Lines files, with their line numbers, for bulk imports."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fidelia.kit.bounds import find_nul

Record = tuple[int, dict[str, Any] | str]  # (line number, record or the reason it is unreadable)


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _path(where: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in where) or "record"


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"cannot tell the format of {path.name}: use --format csv or jsonl")


def read_jsonl(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg} at column {exc.colno}"
                continue
            except RecursionError:
                yield number, "not valid JSON: nested too deep"
                continue
            if not isinstance(value, dict):
                yield number, "a line must hold a JSON object"
            elif ("\\u0000" in line or "\x00" in line) and (where := find_nul(value)) is not None:
                yield number, f"{_path(where)}: text must not contain the NUL character"
            else:
                yield number, value


def read_csv(path: Path) -> Iterator[Record]:
    """Rows as dicts; empty cells are dropped. Line numbers count the header as line 1."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if None in row:
                yield reader.line_num, "more cells than header columns"
                continue
            nul = [k for k, v in row.items() if "\x00" in k or "\x00" in (v or "")]
            if nul:
                yield reader.line_num, f"{nul[0]}: text must not contain the NUL character"
                continue
            yield reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}


@dataclass(frozen=True)
class LineOutcome:
    """What became of one imported record."""

    id: str
    status: Literal["accepted", "duplicate", "rejected"]
    error: str | None = None
    detail: str | None = None
