"""Drift: how far the customers have moved from the ones a model was trained on. Pure numpy.

Population stability index (PSI) per feature. Bins: the deciles of the training population
(nine inner edges; equal edges from tied values merge, so a feature with few distinct
values has fewer bins). A value equal to an edge goes to the bin above it, on both sides.
The training shares are counted with the same bins, so ties are exact. A bin empty on one
side counts as SHARE_FLOOR, so one empty bin gives a large but finite PSI.

    PSI = sum over bins of (now - then) * ln(now / then)

A categorical feature's bins are its categories (``bins_categorical``), and one more for
categories the model never saw.

Thresholds, defined here only: below PSI_MODERATE stable, up to PSI_LARGE a moderate shift,
above it a large one (the credit-scoring convention the PSI comes from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 10
SHARE_FLOOR = 1e-4
PSI_MODERATE = 0.1
PSI_LARGE = 0.25
# The share of customers whose nearest segment changed that counts as a moderate and as a
# large shift.
CHANGED_MODERATE = 0.05
CHANGED_LARGE = 0.15

STABLE, MODERATE, LARGE = "stable", "moderate", "large"
LEVEL_ORDER = {STABLE: 0, MODERATE: 1, LARGE: 2}


@dataclass(frozen=True)
class Bins:
    edges: np.ndarray  # inner edges, increasing
    shares: np.ndarray  # share of the training population in each of len(edges) + 1 bins


def bins_fit(values: np.ndarray, *, bins: int = BINS) -> Bins:
    """Decile bins of the training values (NaN ignored) and the training shares in them."""
    known = values[~np.isnan(values)]
    if not len(known):
        return Bins(np.empty(0), np.ones(1))
    edges = np.unique(np.quantile(known, np.arange(1, bins) / bins))
    return Bins(edges, bin_shares(known, edges))


def bins_categorical(codes: np.ndarray, n_categories: int) -> Bins:
    """A categorical feature's bins are its categories (codes 0..n-1), plus one last bin
    for categories the model never saw: the PSI then compares category shares."""
    edges = np.arange(1, n_categories + 1) - 0.5
    return Bins(edges, bin_shares(codes, edges))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of ``values`` (NaN ignored) in each bin of ``edges``."""
    known = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(edges, known, side="right"), minlength=len(edges) + 1)
    return counts / max(len(known), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """The population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=float), SHARE_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), SHARE_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def level(value: float, *, moderate: float = PSI_MODERATE, large: float = PSI_LARGE) -> str:
    if value >= large:
        return LARGE
    if value >= moderate:
        return MODERATE
    return STABLE


def changed_level(share: float) -> str:
    return level(share, moderate=CHANGED_MODERATE, large=CHANGED_LARGE)


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    level: str
    median_then: float | None
    median_now: float | None
    shares_now: tuple[float, ...]


def feature_drift(
    feature: str, baseline: Bins, median_then, values_now: np.ndarray, *, categorical=False
):
    shares_now = bin_shares(values_now, baseline.edges)
    value = psi(baseline.shares, shares_now)
    known = values_now[~np.isnan(values_now)]
    median_now = float(np.median(known)) if len(known) and not categorical else None
    return FeatureDrift(
        feature,
        value,
        level(value),
        median_then,
        median_now,
        tuple(float(s) for s in shares_now),
    )


@dataclass(frozen=True)
class SegmentChanges:
    compared: int  # customers in the training population who are still here
    changed: int  # of them, how many are nearest to another segment now
    new: int  # customers now who were not in the training population
    gone: int  # training customers no longer here (deleted, or now missing a feature)

    @property
    def share(self) -> float:
        return self.changed / self.compared if self.compared else 0.0


def segment_changes(
    pks_then: np.ndarray, labels_then: np.ndarray, pks_now: np.ndarray, labels_now: np.ndarray
) -> SegmentChanges:
    """Compare each customer's cluster at training with their nearest cluster now (both
    arrays of customer keys sorted ascending and unique)."""
    # Both sorted: one binary search per earlier customer, no sort of a million keys.
    at_now = np.searchsorted(pks_now, pks_then)
    found = at_now < len(pks_now)
    found[found] = pks_now[at_now[found]] == pks_then[found]
    compared = int(found.sum())
    changed = int(np.count_nonzero(labels_then[found] != labels_now[at_now[found]]))
    return SegmentChanges(compared, changed, len(pks_now) - compared, len(pks_then) - compared)


def overall_level(features: list[FeatureDrift], changes: SegmentChanges) -> str:
    levels = [f.level for f in features] + [changed_level(changes.share)]
    return max(levels, key=LEVEL_ORDER.__getitem__)
