"""The drift numbers on arrays alone: PSI by hand, a planted shift, a resample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operations import drift


def test_psi_equals_a_hand_computation():
    # Two bins, half and half at training; 70 % and 30 % now.
    expected = 0.2 * math.log(0.7 / 0.5) + (-0.2) * math.log(0.3 / 0.5)
    assert drift.psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(expected)
    assert expected == pytest.approx(0.16946, abs=1e-5)


def test_psi_of_decile_bins_equals_a_hand_computation():
    then = np.arange(100, dtype=float)  # 0..99: deciles at 9.9, 19.8, ...
    bins = drift.bins_fit(then)
    assert np.allclose(bins.shares, 0.1)
    now = np.concatenate([np.full(50, 5.0), np.arange(50, 100, dtype=float)])
    shares_now = drift.bin_shares(now, bins.edges)
    # Half the customers now sit in the first decile; deciles 2 to 5 are empty (floor).
    assert shares_now[0] == pytest.approx(0.5)
    by_hand = (0.5 - 0.1) * math.log(0.5 / 0.1) + 4 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    by_hand += sum((s - 0.1) * math.log(s / 0.1) for s in shares_now[5:])
    assert drift.psi(bins.shares, shares_now) == pytest.approx(by_hand)
    assert drift.level(by_hand) == drift.LARGE


def test_a_planted_shift_is_large_and_a_resample_is_stable():
    rng = np.random.default_rng(0)
    population = rng.normal(60, 15, 20_000)
    bins = drift.bins_fit(population[:10_000])
    resample = drift.feature_drift("income", bins, 60.0, population[10_000:])
    shifted = drift.feature_drift("income", bins, 60.0, population[10_000:] + 10)
    assert resample.level == drift.STABLE and resample.psi < 0.02
    assert shifted.level == drift.LARGE
    assert shifted.median_now > shifted.median_then


def test_segment_changes_compare_only_customers_present_both_times():
    changes = drift.segment_changes(
        np.array([1, 2, 3, 4]),
        np.array([0, 0, 1, 1]),
        np.array([2, 3, 4, 5]),
        np.array([0, 0, 1, 1]),
    )
    assert (changes.compared, changes.changed, changes.new, changes.gone) == (3, 1, 1, 1)
    assert changes.share == pytest.approx(1 / 3)


def test_thresholds_name_the_levels():
    assert drift.level(0.05) == drift.STABLE
    assert drift.level(drift.PSI_MODERATE) == drift.MODERATE
    assert drift.level(drift.PSI_LARGE) == drift.LARGE
