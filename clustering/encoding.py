"""Categorical features in a segmentation: one-hot columns weighted as one numeric feature.

A run's raw rows keep one column per feature; a categorical feature's column holds the
category's code (its index in the run's list of values). Inside the saved pipeline,
``OneHotColumns`` turns each such column into one 0/1 column per category and
``MixedScaler`` standardises: numeric columns to mean 0 and sd 1 (StandardScaler), and the
m dummy columns of a categorical feature, whose shares are p_1..p_m, to

    (dummy_j - p_j) / sqrt(1 - sum p_i^2)

so the feature's dummy columns together have a variance of exactly 1, as a standardised
numeric feature has. Equivalently, two customers drawn at random are as far apart on it,
on average (expected squared distance 2), as on a numeric feature: a region with five
values weighs as much as income, not five times as much, and a rare category does not
vanish. Two customers in different categories are sqrt(2 / (1 - sum p^2)) apart.

Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler

# The value of a customer without the attribute, when missing values are filled in: a
# category of its own (a median of categories means nothing).
MISSING_CATEGORY = "(missing)"
MIN_SPREAD = 1e-9


class UnknownCategory(ValueError):
    """A code the run never saw (``column``: the input column)."""

    def __init__(self, column: int, value: float) -> None:
        super().__init__(f"column {column}: no category with code {value!r}")
        self.column = column
        self.value = value


class OneHotColumns(BaseEstimator, TransformerMixin):
    """One 0/1 column per category of each categorical column; numeric columns as they are.

    ``values``: per input column, None (numeric) or the category values (the code is the
    index), so a saved model knows its categories by name."""

    def __init__(self, values: Sequence[Sequence[str] | None] = ()) -> None:
        self.values = values

    def fit(self, X=None, y=None) -> OneHotColumns:
        self.values_ = [None if v is None else list(v) for v in self.values]
        self.groups_ = []
        position = 0
        for values in self.values_:
            width = 1 if values is None else len(values)
            if values is not None:
                self.groups_.append(tuple(range(position, position + width)))
            position += width
        self.n_columns_ = position
        return self

    @property
    def categorical(self) -> np.ndarray:
        return np.array([v is not None for v in self.values_], dtype=bool)

    def transform(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        out = np.zeros((len(X), self.n_columns_))
        position = 0
        for column, values in enumerate(self.values_):
            if values is None:
                out[:, position] = X[:, column]
                position += 1
                continue
            codes = X[:, column]
            known = np.isfinite(codes) & (codes >= 0) & (codes < len(values))
            known &= codes == np.round(np.where(np.isfinite(codes), codes, 0))
            if not known.all():
                raise UnknownCategory(column, float(codes[~known][0]))
            out[np.arange(len(X)), position + codes.astype(np.intp)] = 1.0
            position += len(values)
        return out

    def collapse(self, expanded: np.ndarray, *, fill: float | None = None) -> np.ndarray:
        """Expanded columns back to one per feature: a categorical feature's is the code of
        its largest column (its modal category), or ``fill`` when given."""
        expanded = np.atleast_2d(expanded)
        out = np.empty((len(expanded), len(self.values_)))
        position = 0
        for column, values in enumerate(self.values_):
            if values is None:
                out[:, column] = expanded[:, position]
                position += 1
                continue
            block = expanded[:, position : position + len(values)]
            out[:, column] = block.argmax(axis=1) if fill is None else fill
            position += len(values)
        return out

    def shares(self, expanded_original: np.ndarray, column: int) -> np.ndarray:
        """The category shares of one categorical column from rows in original units (a
        centre's dummy columns are its members' shares of each category)."""
        group = self.groups_[int(self.categorical[:column].sum())]
        block = np.atleast_2d(expanded_original)[:, list(group)]
        return np.clip(block, 0.0, 1.0)


class MixedScaler(StandardScaler):
    """StandardScaler whose dummy columns (``groups``: the expanded column indices of each
    categorical feature) are scaled so each feature's columns sum to a variance of one."""

    def __init__(self, groups: Sequence[Sequence[int]] = (), *, copy=True) -> None:
        super().__init__(copy=copy)
        self.groups = groups

    def fit(self, X, y=None, sample_weight=None) -> MixedScaler:
        super().fit(X, y, sample_weight)
        for group in self.groups:
            columns = list(group)
            shares = self.mean_[columns]
            spread = np.sqrt(max(1.0 - float(np.sum(shares**2)), 0.0))
            self.scale_[columns] = spread if spread > MIN_SPREAD else 1.0
        return self


def category_codes(values: Sequence[str], chosen: Sequence[str]) -> np.ndarray:
    """Codes of ``chosen`` values in ``values`` (NaN for a value not among them)."""
    index = {v: i for i, v in enumerate(values)}
    return np.array([index.get(v, np.nan) for v in chosen], dtype=np.float64)
