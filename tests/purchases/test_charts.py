"""The cumulative repeat-purchases chart's geometry (pure)."""

from __future__ import annotations

from purchases.charts import tracking_chart


def points(text: str) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in text.split()]


def test_the_lines_span_the_plot_and_the_larger_value_is_drawn_higher():
    chart = tracking_chart([1, 2, 3, 78], [0, 5, 9, 1450], [1, 6, 10, 1400], 39.0)
    left, top, right, bottom = chart.plot

    actual, predicted = points(chart.actual), points(chart.predicted)

    assert actual[-1][0] == right and actual[0][0] > left
    assert all(top <= y <= bottom for _x, y in actual + predicted)
    assert actual[-1][1] < predicted[-1][1]  # 1,450 actual above 1,400 expected
    assert left < chart.calibration_x < right
    assert [label for _y, label in chart.y_ticks][:2] == ["0", "500"]


def test_no_points_no_chart():
    assert tracking_chart([], [], [], None) is None
