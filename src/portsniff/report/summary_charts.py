"""Inline SVG charts for the HTML summary: bars, lines over time and a donut.

Every function returns SVG markup as a string; every label is HTML-escaped here, so
callers can pass packet and registry strings as they are. Nothing is fetched: no fonts,
no scripts, no external references.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from portsniff.summary import MAX_BINS, Timeline

#: Colour-blind-safe categorical palette (Okabe & Ito), then greys.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
MUTED = "#9aa5b1"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: label, value, value as text, colour."""

    label: str
    value: int
    text: str
    color: str = PALETTE[0]


def bars(items: Sequence[Bar], *, title: str, label_width: int = 190, width: int = 640) -> str:
    """A horizontal bar chart (one row per item, longest bar = full width)."""
    row, top = 26, 8
    height = top * 2 + row * max(len(items), 1)
    value_w = 130
    plot = width - label_width - value_w - 16
    biggest = max((b.value for b in items), default=0) or 1
    out = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{_e(title)}</title>",
    ]
    for i, b in enumerate(items):
        y = top + i * row
        w = max(plot * b.value / biggest, 1.5 if b.value else 0)
        out.append(
            f'<g class="bar"><title>{_e(b.label)}: {_e(b.text)}</title>'
            f'<text x="{label_width - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end" '
            f'class="lbl">{_e(_short(b.label, 28))}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" rx="3" '
            f'fill="{_e(b.color)}"/>'
            f'<text x="{label_width + w + 6:.1f}" y="{y + row / 2 + 4:.1f}" '
            f'class="val">{_e(b.text)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name, colour and timeline."""

    name: str
    color: str
    timeline: Timeline


def common_bins(series: Sequence[Series]) -> tuple[float, int, list[list[int]]]:
    """Re-bin every timeline to one width (the widest, doubled until the whole span
    fits ``MAX_BINS``): returns (width, first bin, values per series with empty bins as
    0), so lines share an x axis and gaps in traffic show as zero."""
    width = max((s.timeline.width for s in series), default=1.0)
    points = [s.timeline.points() for s in series]
    times = [t for pts in points for t, _ in pts]
    if not times:
        return width, 0, [[] for _ in series]
    lo_t, hi_t = min(times), max(times)
    while math.floor(hi_t / width) - math.floor(lo_t / width) + 1 > MAX_BINS:
        width *= 2
    lo = math.floor(lo_t / width)
    n = math.floor(hi_t / width) - lo + 1
    values = []
    for pts in points:
        v = [0] * n
        for t, b in pts:
            v[math.floor(t / width) - lo] += b
        values.append(v)
    return width, lo, values


def lines(
    series: Sequence[Series],
    *,
    title: str,
    clock: Callable[[float], str],
    human: Callable[[int], str],
    width: int = 1300,
    height: int = 310,
) -> str:
    """Bytes per time bin for each series, on shared axes, with a legend."""
    left, right, top, bottom = 78, 16, 12, 70
    pw, ph = width - left - right, height - top - bottom
    bin_w, lo, values = common_bins(series)
    n = max((len(v) for v in values), default=0)
    ticks = nice_ticks(max((max(v) for v in values if v), default=0))
    peak = ticks[-1] or 1
    out = [
        f'<svg class="chart lines" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{_e(title)}</title>",
    ]

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n if n else pw / 2)

    def y(v: int) -> float:
        return top + ph - ph * v / peak

    for tick in ticks:
        yy = y(tick)
        out.append(f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        out.append(
            f'<text class="tick" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{_e(human(tick))}</text>"
        )
    if n:
        marks = sorted({0, n // 4, n // 2, 3 * n // 4, n - 1})
        for i in marks:
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            out.append(
                f'<text class="tick" x="{x(i):.1f}" y="{top + ph + 16}" '
                f'text-anchor="{anchor}">{_e(clock((lo + i) * bin_w))}</text>'
            )
    out.append(
        f'<text class="axis" text-anchor="middle" '
        f'transform="translate(14 {top + ph / 2:.1f}) rotate(-90)">'
        f"bytes per {_e(_seconds(bin_w))}</text>"
    )
    for s, v in zip(series, values, strict=True):
        pts = " ".join(f"{x(i):.1f},{y(b):.1f}" for i, b in enumerate(v))
        out.append(f'<g class="series"><title>{_e(s.name)}</title>')
        if len(v) > 1:
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{_e(s.color)}" '
                f'stroke-width="2" stroke-linejoin="round"/>'
            )
        if len(v) <= 60:
            for i, b in enumerate(v):
                out.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(b):.1f}" r="3" fill="{_e(s.color)}">'
                    f"<title>{_e(s.name)} {_e(clock((lo + i) * bin_w))}: {_e(human(b))}"
                    "</title></circle>"
                )
        out.append("</g>")
    # Legend under the plot, wrapping every four entries.
    for i, s in enumerate(series):
        lx = left + (i % 4) * (pw / 4)
        ly = top + ph + 42 + (i // 4) * 16
        out.append(
            f'<rect x="{lx:.1f}" y="{ly - 9}" width="12" height="4" rx="1" '
            f'fill="{_e(s.color)}"/><text class="lbl" x="{lx + 18:.1f}" y="{ly - 4}">'
            f"{_e(_short(s.name, 30))}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def nice_ticks(peak: int, count: int = 4) -> list[int]:
    """Round y-axis ticks from 0 to at least ``peak``: steps of 1, 2 or 5 times a power
    of 1024 (so byte labels read 512 B, 1.0 KiB, 1.5 KiB ...) or of 10 below 1 KiB."""
    if peak <= 0:
        return [0, 1]
    unit = 1
    while peak / unit >= 1024:
        unit *= 1024
    raw = peak / unit / count
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    step_bytes = max(1, round(step * unit))
    top = math.ceil(peak / step_bytes) * step_bytes
    return list(range(0, top + 1, step_bytes))


def _seconds(width: float) -> str:
    """Bins are powers of two seconds: name them in the unit that keeps them whole."""
    if width < 60 or width % 60:
        return f"{width:g} s"
    if width < 3600 or width % 3600:
        return f"{width / 60:g} min"
    return f"{width / 3600:g} h"


def donut(parts: Sequence[Bar], *, title: str, center: str, size: int = 220) -> str:
    """A donut of ``parts`` (values as shares of their sum), legend on the right."""
    total = sum(p.value for p in parts)
    r, stroke = 70, 30
    cx = cy = size / 2
    circ = 2 * math.pi * r
    width = size + 230
    out = [
        f'<svg class="chart donut" viewBox="0 0 {width} {size}" role="img" '
        f'aria-label="{_e(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{_e(title)}</title>",
        f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="var(--track)" '
        f'stroke-width="{stroke}"/>',
    ]
    offset = 0.0
    for p in parts:
        if not total or not p.value:
            continue
        length = circ * p.value / total
        out.append(
            f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{_e(p.color)}" '
            f'stroke-width="{stroke}" stroke-dasharray="{length:.2f} {circ - length:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {cx} {cy})">'
            f"<title>{_e(p.label)}: {_e(p.text)}</title></circle>"
        )
        offset += length
    out.append(
        f'<text class="center" x="{cx}" y="{cy + 6}" text-anchor="middle">{_e(center)}</text>'
    )
    for i, p in enumerate(parts):
        ly = cy - 30 * len(parts) / 2 + 30 * i + 18
        out.append(
            f'<rect x="{size + 10}" y="{ly - 11}" width="14" height="14" rx="3" '
            f'fill="{_e(p.color)}"/><text class="lbl" x="{size + 32}" y="{ly}">'
            f'{_e(p.label)} <tspan class="val">{_e(p.text)}</tspan></text>'
        )
    out.append("</svg>")
    return "".join(out)
