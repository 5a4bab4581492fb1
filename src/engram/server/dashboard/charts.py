"""Bar charts as geometry for inline SVG; the template draws them (escaped labels, no script, no style attribute)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    title: str


def columns(points: list[tuple[str, int]], *, title: str, width: int = 600, height: int = 120) -> Chart:
    """Vertical bars side by side, scaled to the largest value (a 0 stays a hairline)."""
    peak = max((v for _, v in points), default=0)
    step = width / max(len(points), 1)
    bars = []
    for i, (label, value) in enumerate(points):
        h = 1.0 if peak == 0 else max(1.0, (height - 4) * value / peak)
        x, width_ = round(i * step + 1, 2), round(max(step - 2, 1), 2)
        bars.append(Bar(x, round(height - h, 2), width_, round(h, 2), label, value))
    return Chart(width, height, bars, peak, title)


def rows(points: list[tuple[str, int]], *, title: str, width: int = 600, row: int = 22) -> Chart:
    """Horizontal bars, one row each, leaving the left third of the width for the labels."""
    peak = max((v for _, v in points), default=0)
    left, room = width // 3, width - width // 3 - 70
    bars = [
        Bar(left, i * row + 3, round(1.0 if peak == 0 else max(1.0, room * value / peak), 2), row - 6, label, value)
        for i, (label, value) in enumerate(points)
    ]
    return Chart(width, max(len(points), 1) * row, bars, peak, title)
