"""The cumulative repeat-purchases chart (actual against the model), as SVG geometry.

Pure Python: the page draws the lines this returns, so the chart needs no script and no
CDN, and prints as it shows."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 16, 40


@dataclass(frozen=True)
class TrackingChart:
    width: int
    height: int
    actual: str  # polyline points "x,y x,y ..."
    predicted: str
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    calibration_x: float | None
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def tracking_chart(
    weeks: list[float],
    actual: list[float],
    predicted: list[float],
    calibration_weeks: float | None = None,
) -> TrackingChart | None:
    """The chart of cumulative repeat purchases by week; None without points."""
    if not weeks:
        return None
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM
    x_max = max(weeks) or 1.0
    y_max = max(max(actual), max(predicted), 1.0)
    y_step = _nice_step(y_max)
    y_top = math.ceil(y_max / y_step) * y_step

    def x(week: float) -> float:
        return round(left + (right - left) * week / x_max, 1)

    def y(value: float) -> float:
        return round(bottom - (bottom - top) * value / y_top, 1)

    def line(values: list[float]) -> str:
        return " ".join(f"{x(w)},{y(v)}" for w, v in zip(weeks, values, strict=True))

    x_step = _nice_step(x_max, 8)
    x_ticks = [(x(w), f"{w:g}") for w in _range(0, x_max, x_step)]
    y_ticks = [(y(v), f"{v:,.0f}") for v in _range(0, y_top, y_step)]
    calibration = x(calibration_weeks) if calibration_weeks else None
    return TrackingChart(
        WIDTH,
        HEIGHT,
        line(actual),
        line(predicted),
        x_ticks,
        y_ticks,
        calibration,
        (left, top, right, bottom),
    )


def _range(start: float, stop: float, step: float) -> list[float]:
    count = int(math.floor(stop / step + 1e-9))
    return [start + i * step for i in range(count + 1)]
