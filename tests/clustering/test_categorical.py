"""Categorical features in a segmentation: one-hot columns inside the saved pipeline,
weighted so that each categorical feature counts as much as one numeric feature."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering import algorithms, engine
from clustering.encoding import OneHotColumns, UnknownCategory

REGIONS = ["north", "south", "east", "west", "centre", "islands"]


def planted_by_channel(n: int = 900, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two numeric features that are pure noise (one bell each, the same in both groups)
    and a channel (online / store) that alone separates two groups."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    X = np.column_stack([rng.normal(50, 10, n), rng.normal(30, 5, n), truth.astype(float)])
    return X, truth


CHANNELS = ["online", "store"]


def encoder(*categorical: list[str] | None) -> OneHotColumns:
    return OneHotColumns(list(categorical)).fit()


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "ward"])
def test_groups_separated_only_by_a_categorical_attribute_are_recovered(algorithm):
    X, truth = planted_by_channel()
    result = algorithms.sweep_and_fit(
        algorithm, X, X, k_values=[2], k_fixed=2, log_mask=np.zeros(3, bool),
        min_share=0.01, min_size=25, encoder=encoder(None, None, CHANNELS),
    )  # fmt: skip
    labels = engine.score(result.pipeline, X, sigma2=1.0).cluster
    assert adjusted_rand_score(truth, labels) > 0.95


def test_a_categorical_feature_weighs_as_one_standardised_numeric_feature():
    """The statement: after the saved pipeline's scaling, the dummy columns of a categorical
    feature have a total variance of 1, as a standardised numeric feature has, whether it
    has 2 or 6 categories and however uneven their shares; so two random customers are on
    average as far apart on it (squared distance 2) as on a numeric feature."""
    rng = np.random.default_rng(1)
    n = 20_000
    X = np.column_stack(
        [
            rng.lognormal(3, 1, n),
            rng.choice(2, n, p=[0.9, 0.1]).astype(float),
            rng.choice(6, n, p=[0.5, 0.2, 0.1, 0.1, 0.05, 0.05]).astype(float),
        ]
    )
    steps = encoder(None, ["yes", "no"], REGIONS)
    pipeline = engine.fit(X, k=2, log_columns=[False, False, False], encoder=steps)
    Z = engine.to_model_space(pipeline, X)
    numeric, binary, six = Z[:, [0]], Z[:, 1:3], Z[:, 3:9]
    for block in (numeric, binary, six):
        assert block.var(axis=0).sum() == pytest.approx(1.0, abs=1e-9)
    a, b = rng.permutation(n), rng.permutation(n)
    for block in (numeric, binary, six):
        pair_d2 = ((block[a] - block[b]) ** 2).sum(axis=1).mean()
        assert pair_d2 == pytest.approx(2.0, abs=0.1)


def test_a_code_the_run_never_saw_is_refused_not_guessed():
    steps = encoder(None, REGIONS)
    with pytest.raises(UnknownCategory) as refused:
        steps.transform(np.array([[1.0, 6.0]]))
    assert refused.value.column == 1
    with pytest.raises(UnknownCategory):
        steps.transform(np.array([[1.0, np.nan]]))


def test_a_centre_reads_back_as_its_members_category_mix():
    X, truth = planted_by_channel()
    pipeline = engine.fit(
        X, k=2, log_columns=np.zeros(3, bool), encoder=encoder(None, None, CHANNELS)
    )
    centres = engine.scaler_of(pipeline).inverse_transform(engine.centroids_sd(pipeline))
    mix = engine.encoder_of(pipeline).shares(centres, 2)
    labels = pipeline[-1].labels_
    for cluster in range(2):
        members = X[labels == cluster, 2].astype(int)
        expected = np.bincount(members, minlength=2) / len(members)
        assert mix[cluster] == pytest.approx(expected, abs=1e-9)
    # The centre in original units shows the modal category; the naming columns read 0.
    assert engine.centroids_by_feature_sd(pipeline)[:, 2].tolist() == [0.0] * 2
    assert sorted(engine.centroids_original(pipeline)[:, 2].tolist()) == [0.0, 1.0]
