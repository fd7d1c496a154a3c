"""The campaign statistics against published values, hand computations and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from campaigns.planning import plan
from campaigns.stats import (
    GroupCounts,
    Sample,
    lift,
    mean_difference,
    proportion_difference,
    proportions_needed,
    wilson_interval,
)


def test_wilson_interval_equals_newcombs_published_example():
    # Newcomb (1998), 81/263: 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)

    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    "counts, published",
    [
        ((56, 70, 48, 80), (0.0524, 0.3339)),  # Newcomb 1998, example (a), method 10
        ((9, 10, 3, 10), (0.1705, 0.8090)),  # example (b)
        ((0, 10, 0, 20), (-0.1611, 0.2775)),  # example (h): no conversions at all
    ],
)
def test_difference_interval_equals_newcombs_published_values(counts, published):
    difference = proportion_difference(*counts)

    assert (round(difference.low, 4), round(difference.high, 4)) == published


def test_difference_with_zero_conversions_in_control_equals_a_hand_computation():
    # Treatment 12 of 200, control 0 of 25; Wilson by hand, then Newcomb's combination.
    z = 1.959963984540054

    def wilson(x, n):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return centre - half, centre + half

    (l1, u1), (l0, u0) = wilson(12, 200), wilson(0, 25)
    expected_low = 0.06 - math.sqrt((0.06 - l1) ** 2 + (u0 - 0) ** 2)
    expected_high = 0.06 + math.sqrt((u1 - 0.06) ** 2 + (0 - max(l0, 0)) ** 2)

    difference = proportion_difference(12, 200, 0, 25)

    assert difference.estimate == pytest.approx(0.06)
    assert difference.low == pytest.approx(expected_low, abs=1e-12)
    assert difference.high == pytest.approx(expected_high, abs=1e-12)
    assert not difference.significant  # the interval spans zero
    assert -1 <= difference.low < 0 < difference.high <= 1


def test_group_size_needed_matches_the_textbook_figure():
    # 5 % against 10 %, equal groups, two-sided 5 %, 80 % power: 435 per group (Fleiss,
    # without continuity correction).
    assert proportions_needed(0.05, 0.10, ratio=1.0) == (435, 435)


def test_a_larger_treatment_group_needs_fewer_in_control_but_more_in_total():
    equal = proportions_needed(0.05, 0.10, ratio=1.0)
    nine_to_one = proportions_needed(0.05, 0.10, ratio=9.0)

    assert nine_to_one[1] < equal[1]
    assert sum(nine_to_one) > sum(equal)
    assert nine_to_one[0] == pytest.approx(9 * nine_to_one[1], abs=9)


def test_welch_interval_equals_scipys():
    rng = np.random.default_rng(3)
    treatment = rng.exponential(40, 300) * (rng.random(300) < 0.3)
    control = rng.exponential(40, 45) * (rng.random(45) < 0.2)

    ours = mean_difference(
        Sample(len(treatment), treatment.sum(), (treatment**2).sum()),
        Sample(len(control), control.sum(), (control**2).sum()),
    )
    theirs = scipy_stats.ttest_ind(treatment, control, equal_var=False).confidence_interval(0.95)

    assert ours.estimate == pytest.approx(treatment.mean() - control.mean())
    assert ours.low == pytest.approx(theirs.low, rel=1e-9)
    assert ours.high == pytest.approx(theirs.high, rel=1e-9)


def test_no_interval_without_two_customers_in_each_group():
    assert mean_difference(Sample(10, 50.0, 400.0), Sample(1, 5.0, 25.0)) is None
    assert proportion_difference(3, 10, 0, 0) is None


def test_lift_gives_incremental_revenue_cost_and_roi():
    # 1,000 treated, 100 converted, 20,000 revenue; 100 in control, 5 converted, 500.
    treatment = GroupCounts(1000, 100, 20_000.0, 100 * 200.0**2)
    control = GroupCounts(100, 5, 500.0, 5 * 100.0**2)

    result = lift(treatment, control, cost_per_contact=0.5)

    assert result.conversion.estimate == pytest.approx(0.05)
    assert result.revenue.estimate == pytest.approx(20.0 - 5.0)
    assert result.incremental_revenue == pytest.approx(15.0 * 1000)
    assert result.cost == pytest.approx(500.0)
    assert result.roi == pytest.approx((15_000 - 500) / 500)
    assert result.incremental_revenue_low == pytest.approx(result.revenue.low * 1000)
    low, high = result.roi_interval
    assert low == pytest.approx((result.revenue.low * 1000 - 500) / 500)
    assert low < result.roi < high


def test_planning_calculator_reproduces_the_playbook_example():
    result = plan(
        everyone_customers=5000,
        everyone_conversion=0.02,
        segment_name="High-Value Customers",
        segment_customers=850,
        segment_conversion=0.12,
        order_value=500,
        cost_per_contact=1.0,
    )

    assert result.everyone.sales == pytest.approx(100)
    assert result.everyone.revenue == pytest.approx(50_000)
    assert result.segment.sales == pytest.approx(102)
    assert result.segment.revenue == pytest.approx(51_000)
    assert round(result.cost_saved_share * 100) == 83
    assert result.better == "segment"
    assert result.verdict.startswith("Contacting only High-Value Customers costs 83 % less")
