"""Small line charts as inline SVG, drawn on the server: no JavaScript library, nothing fetched.

Plain Python with no Django: callers pass points and get back an SVG string whose text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 28, 44
Y_TICKS = 4


@dataclass(frozen=True)
class Point:
    x: float  # position on the x axis: a version's index, or a time in epoch seconds
    y: float | None  # None: no value (a gap in the line)
    low: float | None = None  # a confidence interval, drawn as an error bar (and a band between points)
    high: float | None = None
    label: str = ""  # the tooltip
    highlight: bool = False  # ringed, e.g. the active model version


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[Point, ...]


def _nice_step(span: float) -> float:
    raw = span / Y_TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _y_range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = _nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _format(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_ticks: Sequence[tuple[float, str]] = (),
    width: int = 520,
    height: int = 220,
    empty_text: str = "No data yet",
    dodge: float = 0.0,
) -> str:
    """An SVG line chart: one line per series, error bars and a band where points carry an interval,
    tooltips on the points, and a legend. `x_ticks` are (position, label) pairs on the x axis; `dodge` shifts
    each series sideways by that many pixels from the next (for intervals measured at the same moments)."""
    values = [v for s in series for p in s.points for v in (p.y, p.low, p.high) if v is not None and math.isfinite(v)]
    xs = [p.x for s in series for p in s.points if p.y is not None] + [x for x, _ in x_ticks]
    label = escape(title)
    head = (
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text class="chart-title" x="{MARGIN_LEFT}" y="16">{label}</text>'
    )
    if not values or not xs:
        return (
            head
            + f'<text class="chart-empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">{escape(empty_text)}</text></svg>'
        )

    y_low, y_high = _y_range(values)
    x_low, x_high = min(xs), max(xs)
    if x_high - x_low < 1e-9:
        x_low, x_high = x_low - 1, x_high + 1
    plot_w, plot_h = width - MARGIN_LEFT - MARGIN_RIGHT, height - MARGIN_TOP - MARGIN_BOTTOM

    def sx(x: float, shift: float = 0.0) -> float:
        return round(MARGIN_LEFT + (x - x_low) / (x_high - x_low) * plot_w + shift, 1)

    def sy(y: float) -> float:
        return round(MARGIN_TOP + (y_high - y) / (y_high - y_low) * plot_h, 1)

    parts = [head]
    step = _nice_step(y_high - y_low)
    for i in range(round((y_high - y_low) / step) + 1):
        y = y_low + i * step
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{sy(y)}" y2="{sy(y)}"/>'
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{sy(y) + 4}" text-anchor="end">{_format(y)}</text>'
        )
    bottom = MARGIN_TOP + plot_h
    for x, text in x_ticks:
        parts.append(
            f'<line class="axis" x1="{sx(x)}" x2="{sx(x)}" y1="{bottom}" y2="{bottom + 4}"/>'
            f'<text class="tick" x="{sx(x)}" y="{bottom + 16}" text-anchor="middle">{escape(text)}</text>'
        )
    parts.append(f'<line class="axis" x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{bottom}" y2="{bottom}"/>')

    for number, one in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        shift = (number - (len(series) - 1) / 2) * dodge  # side by side, so that intervals at one x stay readable
        points = [p for p in one.points if p.y is not None and math.isfinite(p.y)]
        banded = [p for p in points if p.low is not None and p.high is not None]
        if len(banded) >= 2:
            upper = " ".join(f"{sx(p.x, shift)},{sy(p.high)}" for p in banded)
            lower = " ".join(f"{sx(p.x, shift)},{sy(p.low)}" for p in reversed(banded))
            parts.append(f'<polygon class="band" fill="{colour}" points="{upper} {lower}"/>')
        if len(points) >= 2:
            line = " ".join(f"{sx(p.x, shift)},{sy(p.y)}" for p in points)
            parts.append(f'<polyline class="line" stroke="{colour}" points="{line}"/>')
        for p in points:
            if p.low is not None and p.high is not None:
                parts.append(
                    f'<line class="errorbar" stroke="{colour}" x1="{sx(p.x, shift)}" x2="{sx(p.x, shift)}" '
                    f'y1="{sy(p.low)}" y2="{sy(p.high)}"/>'
                )
            tip = escape(p.label or f"{one.name}: {_format(p.y)}")
            ring = (
                f'<circle class="highlight" cx="{sx(p.x, shift)}" cy="{sy(p.y)}" r="7" stroke="{colour}"/>'
                if p.highlight
                else ""
            )
            parts.append(
                f'{ring}<circle class="point" cx="{sx(p.x, shift)}" cy="{sy(p.y)}" r="3.5" fill="{colour}">'
                f"<title>{tip}</title></circle>"
            )
        legend_x = MARGIN_LEFT + number * 150
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{legend_x + 14}" y="{height - 5}">{escape(one.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
