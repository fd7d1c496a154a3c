"""Turn the customers in the database into the rows a run trains on.

Which features (the run's, or by default every numeric catalogue feature that at least
CLUSTERING_MIN_FEATURE_COVERAGE of the customers have), what to do with customers missing
one (leave out, or fill in the median), which skewed money-like features to read on a log
scale, and which customers are so far outside the rest that they must not pull a centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from clustering import engine
from clustering.encoding import OneHotColumns
from clustering.reading import FeatureMatrix, customers_feature_matrix, feature_coverage
from customers.catalogue import SOURCE_PURCHASES, Catalogue


class NotEnoughData(Exception):
    """The customers cannot support a run as asked; the message says what to change."""


@dataclass(frozen=True)
class PreparedData:
    data: FeatureMatrix
    features: tuple[str, ...]
    log_mask: np.ndarray  # by feature: read as log(1 + x)
    outliers: np.ndarray  # by customer: left out of fitting the centres

    @property
    def fit_rows(self) -> np.ndarray:
        return ~self.outliers

    def encoder(self) -> OneHotColumns | None:
        """The one-hot step of the run's pipeline, when a chosen feature is categorical."""
        values = self.data.category_values
        if not values:
            return None
        return OneHotColumns([values.get(key) for key in self.features]).fit()

    def X_model(self) -> np.ndarray:
        """Rows fitted on, on the model's scale before standardising (log where chosen)."""
        return engine.log_transform(self.data.X[self.fit_rows], self.log_mask)


def features_default(*, catalogue: Catalogue) -> tuple[str, ...]:
    """The numeric features that enough customers have, in catalogue order.

    Values computed from the purchase history (RFM) are left out: the RFM groups already
    segment by them, and mixed into every default retrain they would pull the clusters
    towards recency and frequency and blur the profiles' segments. Tick them on the
    retrain form (or --features) to cluster on purchase behaviour."""
    total, known = feature_coverage(catalogue=catalogue)
    needed = settings.CLUSTERING_MIN_FEATURE_COVERAGE * total
    chosen = tuple(
        key
        for key, count in known.items()
        if total and count >= needed and catalogue[key].source != SOURCE_PURCHASES
    )
    if len(chosen) < 2:
        shares = ", ".join(
            f"{catalogue[key].label} {count / total:.0%}" for key, count in known.items() if total
        )
        coverage = settings.CLUSTERING_MIN_FEATURE_COVERAGE
        raise NotEnoughData(
            f"Fewer than two features are known for at least {coverage:.0%} of the "
            f"customers ({shares or 'none'}). Import more complete data, or choose the "
            "features on the retrain form."
        )
    return chosen


def training_data_prepare(
    *, features: tuple[str, ...], catalogue: Catalogue, missing: str, log_requested
) -> PreparedData:
    """Read the customers and decide transforms and outliers for a run on ``features``."""
    unknown = [key for key in features if key not in catalogue]
    if unknown:
        raise NotEnoughData(
            f"The feature(s) {', '.join(unknown)} no longer exist; choose the features again."
        )
    usable = {f.key for f in (*catalogue.clusterable(), *catalogue.clusterable_categorical())}
    refused = [catalogue[key].label for key in features if key not in usable]
    if refused:
        raise NotEnoughData(
            f"{', '.join(refused)} cannot be used for clustering (sex never is); choose "
            "other features."
        )
    data = customers_feature_matrix(features=list(features), catalogue=catalogue, missing=missing)
    if len(data.X) == 0:
        return PreparedData(data, features, np.zeros(len(features), bool), np.zeros(0, bool))
    numeric = np.array([key not in data.category_values for key in features], dtype=bool)
    log_mask = _log_mask(data.X, features, catalogue, log_requested) & numeric
    # A category code is a name, not a number: only numeric columns can be far out.
    outliers = (
        engine.robust_outliers(engine.log_transform(data.X, log_mask)[:, numeric])
        if numeric.any()
        else np.zeros(len(data.X), dtype=bool)
    )
    return PreparedData(data, features, log_mask, outliers)


def _log_mask(X: np.ndarray, features, catalogue: Catalogue, requested) -> np.ndarray:
    if requested is not None:
        return np.array([key in requested for key in features], dtype=bool)
    allowed = [catalogue[key].log_allowed for key in features]
    return engine.skewed_columns(X, allowed)
