"""Line charts drawn on the server as SVG geometry (points, ticks): no script, no CDN, and
the page shows the same numbers in a table. Pure Python: no Django."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 36


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: list[tuple[float, float, float]]  # (x, y, value) in the SVG's pixels

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _value in self.points)


@dataclass(frozen=True)
class Chart:
    lines: list[Line]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT
    zero: float | None = None  # the y of zero, when zero is inside the range


def _nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(f * magnitude for f in (1, 2, 2.5, 5, 10) if raw <= f * magnitude * (1 + 1e-9))


def line_chart(
    x_labels: list[str],
    series: list[tuple[str, str, list[float | None]]],
    *,
    from_zero: bool = False,
    number_format: str = "{:,.0f}",
) -> Chart:
    """Lines over the same x positions; a None value leaves a gap in its line (a segment
    absent from a run). ``series`` is (label, colour, values)."""
    values = [v for _label, _colour, vs in series for v in vs if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if from_zero:
        low = min(low, 0.0)
    if high == low:
        low, high = low - 1, high + 1
    step = _nice_step(high - low)
    low = step * (low // step)
    high = step * -(-high // step)
    bottom, top = HEIGHT - BOTTOM, TOP
    right = WIDTH - RIGHT
    count = max(len(x_labels) - 1, 1)

    def x_of(i: int) -> float:
        return LEFT + (right - LEFT) * (i / count if len(x_labels) > 1 else 0.5)

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * (v - low) / (high - low)

    lines = [
        Line(label, colour, [(x_of(i), y_of(v), v) for i, v in enumerate(vs) if v is not None])
        for label, colour, vs in series
    ]
    ticks = round((high - low) / step)
    y_ticks = [
        (y_of(low + i * step), number_format.format(round(low + i * step, 10) + 0.0))
        for i in range(ticks + 1)
    ]
    return Chart(
        lines=lines,
        x_ticks=[(x_of(i), label) for i, label in enumerate(x_labels)],
        y_ticks=y_ticks,
        zero=y_of(0.0) if low < 0 < high else None,
    )
