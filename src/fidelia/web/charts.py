"""Server-side SVG charts: grouped vertical bars, drawn here so that charts need no
JavaScript, print well and sit next to the table they summarise. Colours come from classes
(``series-0``, ``series-1``...) styled by admin.css."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 240
LEFT, BOTTOM, TOP = 56, 28, 12


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _ticks(top: float) -> list[float]:
    if top <= 0:
        return [0.0]
    step = 10 ** (len(str(int(top))) - 1)
    while top / step > 5:
        step *= 2
    return [step * i for i in range(int(top // step) + 1)]


def _short(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"


def bars(title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """A grouped bar chart; ``title`` names it for screen readers (its table follows it)."""
    top = max((v for s in series for v in s.values), default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    group = plot_w / max(len(labels), 1)
    bar = max(group * 0.8 / max(len(series), 1), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in _ticks(top):
        y = TOP + plot_h - tick / top * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">')
        parts.append(f"{_short(tick)}</text>")
    for i, label in enumerate(labels):
        x0 = LEFT + i * group + group * 0.1
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else 0
            h = max(value, 0) / top * plot_h
            x, y = x0 + j * bar, TOP + plot_h - h
            parts.append(
                f'<rect class="series-{j}" x="{x:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" '
                f'height="{h:.1f}"><title>{escape(s.name)} {escape(label)}: '
                f"{_short(value)}</title></rect>"
            )
        if len(labels) <= 12 or i % 2 == 0:
            cx = LEFT + i * group + group / 2
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
