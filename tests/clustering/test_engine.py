"""Tests of the pure clustering engine: numpy arrays only, no database."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from clustering import engine, naming
from customers.catalogue import BUILT_IN_CATALOGUE

# Four well-separated blobs shaped like the playbook personas:
# (age, annual_income, spending_score, purchase_frequency).
CENTERS = np.array(
    [
        (40.0, 120.0, 82.0, 32.0),  # high value
        (28.0, 28.0, 22.0, 8.0),  # budget
        (50.0, 105.0, 25.0, 6.0),  # potential
        (35.0, 60.0, 62.0, 42.0),  # loyal
    ]
)
SPREAD = np.array([6.0, 10.0, 8.0, 4.0])
PLANTED_ARCHETYPES = ("high_value", "budget", "potential", "loyal")
FEATURES = ("age", "annual_income", "spending_score", "purchase_frequency")
LABELS = BUILT_IN_CATALOGUE.labels()


def planted(n_rows: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CENTERS), n_rows)
    return CENTERS[truth] + rng.normal(size=(n_rows, 4)) * SPREAD, truth


def money_data(n_rows: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(age, annual_income) of two groups whose incomes are lognormal, as money often is."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_rows)
    age = rng.normal(np.where(truth, 55.0, 30.0), 5.0)
    income = rng.lognormal(np.where(truth, 4.5, 3.3), 0.6)
    return np.c_[age, income], truth


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return planted()[0]


@pytest.fixture(scope="module")
def swept(data: np.ndarray) -> engine.SweepResult:
    return engine.sweep(data)


@pytest.fixture(scope="module")
def model(data: np.ndarray):
    return engine.fit(data, k=4)


# --------------------------------------------------------------------------- sweep / fit


def test_same_seed_gives_same_labels(data, model):
    again = engine.fit(data, k=4, random_state=0)
    np.testing.assert_array_equal(model[-1].labels_, again[-1].labels_)
    np.testing.assert_allclose(engine.centroids_sd(model), engine.centroids_sd(again))


def test_sweep_uses_the_same_kmeans_as_fit(data, swept, model):
    np.testing.assert_array_equal(swept.labels_by_k[4], model[-1].labels_)


def test_planted_k_is_chosen(swept):
    assert swept.k_values == tuple(range(2, 11))
    assert swept.algorithm == engine.ALGORITHM_KMEANS
    assert swept.silhouette_sample_size == swept.sweep_sample_size == swept.n_rows == 5000
    assert engine.choose_k(swept) == 4
    assert "highest silhouette" in engine.K_RULE


def test_inertia_decreases_with_k(swept):
    assert all(a > b for a, b in zip(swept.inertia, swept.inertia[1:], strict=False))


def test_silhouette_equals_sklearn_for_every_k(data, swept):
    scaled = StandardScaler().fit_transform(data)
    for k, ours in zip(swept.k_values, swept.silhouette, strict=True):
        assert ours == pytest.approx(silhouette_score(scaled, swept.labels_by_k[k]), abs=1e-3)


def test_sampled_silhouette_equals_sklearn_sampled(data):
    rows = data[:1500]
    result = engine.sweep(rows, k_values=(2, 4, 6), random_state=3, silhouette_exact_max=400)
    assert result.silhouette_sample_size == 400
    assert result.sweep_sample_size == 1500
    scaled = StandardScaler().fit_transform(rows)
    for k, ours in zip(result.k_values, result.silhouette, strict=True):
        expected = silhouette_score(scaled, result.labels_by_k[k], sample_size=400, random_state=3)
        assert ours == pytest.approx(expected, abs=1e-3)


def test_silhouette_handles_singletons_absent_labels_and_small_chunks():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(60, 3))
    singleton = np.r_[np.zeros(30, int), np.ones(29, int), [2]]
    gap = np.r_[np.zeros(30, int), np.full(30, 2)]  # label 1 never used
    ours = engine.silhouette_all_k(points, [singleton, gap], chunk_bytes=8 * 60 * 7)
    assert ours[0] == pytest.approx(silhouette_score(points, singleton), abs=1e-9)
    assert ours[1] == pytest.approx(silhouette_score(points, gap), abs=1e-9)


def test_progress_is_reported_up_to_one(data):
    calls: list[tuple[float, str]] = []
    engine.sweep(data[:600], k_values=(2, 3), progress=lambda f, s: calls.append((f, s)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert all(isinstance(step, str) and step for _, step in calls)


def test_uniform_data_gets_a_poor_verdict():
    uniform = np.random.default_rng(0).uniform(size=(2000, 4))
    result = engine.sweep(uniform)
    # Uniform 4-D customers score about 0.18-0.23 at every K: no real segments.
    assert max(result.silhouette) < 0.25
    verdict = engine.silhouette_verdict(result.silhouette[engine.choose_k(result) - 2])
    assert verdict.band == "poor"
    assert "no clear segments" in verdict.text
    assert "personas" in verdict.text


def test_silhouette_verdict_bands():
    bands = [engine.silhouette_verdict(s).band for s in (0.8, 0.7, 0.6, 0.5, 0.3, 0.25, 0.1)]
    assert bands == ["strong", "strong", "reasonable", "reasonable", "weak", "weak", "poor"]


def test_choose_k_prefers_smaller_k_on_ties():
    tie = engine.SweepResult(
        (2, 3, 4), (3.0, 2.0, 1.0), (0.4, 0.6, 0.6), None, 10, 10, "kmeans", 10
    )
    assert engine.choose_k(tie) == 3


def test_choose_k_skips_a_k_whose_smallest_segment_is_below_the_minimum_share():
    sweep = engine.SweepResult(
        (2, 3, 4),
        (3.0, 2.0, 1.0),
        (0.5, 0.7, 0.6),
        None,
        1000,
        1000,
        "kmeans",
        1000,
        smallest_share=(0.4, 0.004, 0.2),  # K=3 scores best by splitting off 4 customers
    )

    assert engine.choose_k(sweep) == 3
    assert engine.choose_k(sweep, min_share=0.05) == 4


def test_a_handful_of_far_away_customers_do_not_get_a_segment_of_their_own():
    X, _truth = planted(2000, seed=1)
    rng = np.random.default_rng(1)
    few = np.array([90.0, 400.0, 5.0, 150.0]) + rng.normal(size=(6, 4))
    result = engine.sweep(np.vstack([X, few]), k_values=range(2, 8))

    assert engine.choose_k(result) == 5  # the silhouette alone likes the 6-customer segment
    assert engine.choose_k(result, min_share=0.01) == 4


def test_minibatch_path_above_a_lowered_threshold(data):
    rows = data[:3000]
    result = engine.sweep(
        rows,
        k_values=(3, 4, 5),
        large_data_threshold=1000,
        sweep_sample_size=1200,
        silhouette_exact_max=800,
    )
    assert result.algorithm == engine.ALGORITHM_MINIBATCH
    assert (result.sweep_sample_size, result.silhouette_sample_size) == (1200, 800)
    assert engine.choose_k(result) == 4
    fitted = engine.fit(rows, k=4, large_data_threshold=1000)
    assert isinstance(fitted[-1], MiniBatchKMeans)
    again = engine.fit(rows, k=4, large_data_threshold=1000)
    np.testing.assert_array_equal(fitted.predict(rows), again.predict(rows))


def test_bad_input_is_rejected(data):
    assert engine.validate_features(("annual_income", "age")) == ("annual_income", "age")
    with pytest.raises(ValueError, match="repeat"):
        engine.validate_features(("age", "income", "age"))
    with pytest.raises(ValueError, match="two features"):
        engine.validate_features(("age",))
    with pytest.raises(ValueError):
        engine.sweep(data[:, :2], feature_names=("age", "annual_income", "spending_score"))
    with pytest.raises(ValueError):
        engine.sweep(data[:5], k_values=(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        engine.sweep(np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]]), k_values=(2,))


# --------------------------------------------------------------------------- confidence


def test_within_variance_is_inertia_per_value(data, model):
    expected = model[-1].inertia_ / (len(data) * 4)
    assert engine.within_variance(model, len(data)) == pytest.approx(expected)


def test_probabilities_sum_to_one_and_argmax_is_predict(data, model):
    sigma2 = engine.within_variance(model, len(data))
    proba = engine.predict_proba(model, data, sigma2=sigma2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(data))
    scores = engine.score(model, data, sigma2=sigma2)
    np.testing.assert_array_equal(scores.cluster, model.predict(data))
    np.testing.assert_allclose(scores.confidence, proba.max(axis=1))
    assert np.all(scores.runner_up != scores.cluster)
    assert np.all(scores.runner_up_probability <= scores.confidence)


def test_midpoint_between_two_centroids_is_half(data):
    two = engine.fit(data, k=2)
    sigma2 = engine.within_variance(two, len(data))
    midpoint = engine.centroids_original(two).mean(axis=0)
    np.testing.assert_allclose(engine.predict_proba(two, midpoint, sigma2=sigma2), 0.5, atol=1e-9)
    assert engine.confidence_band(0.5) == "moderate"


def test_a_shown_confidence_never_reads_as_a_higher_band_than_its_own():
    probabilities = np.random.default_rng(5).uniform(size=20_000)
    edges = np.array([0.5, 0.7, 0.9]) - np.array([[1e-5], [4e-5], [0.0]])

    for p in [*probabilities, *edges.ravel(), 0.8999999999999, 0.29]:
        shown = engine.confidence_rounded(p)
        assert engine.confidence_band(shown) == engine.confidence_band(p), p
        assert p - 1e-4 <= shown <= p + 1e-9
    assert engine.confidence_rounded(0.49996) == 0.4999
    assert engine.confidence_rounded(0.29, 2) == 0.29


def test_midpoint_in_a_four_segment_model_splits_evenly(data, model):
    sigma2 = engine.within_variance(model, len(data))
    midpoint = engine.centroids_original(model)[[0, 1]].mean(axis=0)
    proba = engine.predict_proba(model, midpoint, sigma2=sigma2)[0]
    assert proba[0] == pytest.approx(proba[1], abs=1e-9)


def test_point_at_a_centroid_is_very_confident(data, model):
    sigma2 = engine.within_variance(model, len(data))
    centre = engine.centroids_original(model)[2]
    scores = engine.score(model, centre, sigma2=sigma2)  # a single 1-D row
    assert scores.cluster.tolist() == [2]
    assert engine.confidence_band(scores.confidence[0]) == "very confident"


def test_confidence_can_be_low():
    # Equidistant from three centroids: 1/3 each, which the old formula could never show.
    three = engine.fit(np.array([[0, 0], [0, 0.1], [10, 0], [10, 0.1], [5, 8.66], [5, 8.76]]), k=3)
    centre = engine.centroids_original(three).mean(axis=0)
    proba = engine.predict_proba(three, centre, sigma2=1.0)[0]
    assert engine.confidence_band(proba.max()) == "low"


def test_confidence_bands():
    bands = [engine.confidence_band(p) for p in (0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.2)]
    assert bands == [
        "very confident",
        "very confident",
        "confident",
        "confident",
        "moderate",
        "moderate",
        "low",
    ]
    assert "50 %" in engine.CONFIDENCE_FORMULA


# --------------------------------------------------------------------------- naming
# The naming rules themselves are tested in test_naming.py; these check that the centroids
# of a fitted model name the planted personas.


def test_planted_clusters_get_the_four_archetypes(model):
    names = naming.name_clusters(engine.centroids_sd(model), FEATURES, labels=LABELS)
    assert sorted(n.archetype for n in names) == sorted(PLANTED_ARCHETYPES)
    assert len({n.name for n in names}) == 4
    assert all(n.matched for n in names)
    # Each planted blob gets the persona it was built as.
    nearest = np.argmin(
        np.linalg.norm(engine.centroids_original(model)[:, None] - CENTERS[None], axis=2), axis=1
    )
    assert [PLANTED_ARCHETYPES[i] for i in nearest] == [n.archetype for n in names]


def test_reason_lists_decisive_features_in_sd(model):
    names = naming.name_clusters(engine.centroids_sd(model), FEATURES, labels=LABELS)
    high_value = next(n for n in names if n.archetype == "high_value")
    assert high_value.reason.startswith("income +")
    assert "spending +" in high_value.reason
    assert high_value.reason.count(" sd") >= 2


def test_names_are_unique_at_k10(data):
    ten = engine.fit(data, k=10)
    names = naming.name_clusters(engine.centroids_sd(ten), FEATURES, labels=LABELS)
    assert len({n.name for n in names}) == 10


# --------------------------------------------------------------------------- explain


def test_explain_compares_in_original_units_and_sd(data, model):
    row = data[7]
    cluster = int(model.predict(row.reshape(1, -1))[0])
    rows = engine.explain(model, row, cluster, FEATURES)
    scaler = engine.scaler_of(model)
    centre = engine.centroids_original(model)[cluster]
    assert [r.feature for r in rows] == list(FEATURES)
    for i, r in enumerate(rows):
        assert r.value == pytest.approx(row[i])
        assert r.centroid_value == pytest.approx(centre[i])
        assert r.diff_sd == pytest.approx((row[i] - centre[i]) / scaler.scale_[i])


def test_explain_on_a_log_scale_shows_money_and_the_distance_the_model_sees():
    X, _truth = money_data()
    pipeline = engine.fit(X, k=2, log_columns=[False, True])
    row = X[3]
    cluster = int(pipeline.predict(row.reshape(1, -1))[0])
    income = engine.explain(pipeline, row, cluster, ("age", "annual_income"))[1]

    centre_sd = engine.centroids_sd(pipeline)[cluster, 1]
    assert income.value == pytest.approx(row[1])  # in money, not in log money
    assert income.centroid_value == pytest.approx(engine.centroids_original(pipeline)[cluster, 1])
    seen = engine.to_model_space(pipeline, row.reshape(1, -1))[0, 1]
    assert income.diff_sd == pytest.approx(seen - centre_sd)
    assert income.diff_sd != pytest.approx((row[1] - income.centroid_value) / X[:, 1].std())


# --------------------------------------------------------------------------- stability


def test_planted_data_is_stable(data, model):
    assert engine.stability(data, model, k=4) > 0.9


def test_stability_accepts_labels_and_samples_big_data(data, model):
    labels = model.predict(data)
    assert engine.stability(data, labels, sample_max=1000) > 0.9


def test_stability_is_low_for_no_structure():
    uniform = np.random.default_rng(2).uniform(size=(1500, 4))
    labels = KMeans(8, n_init=1, random_state=0).fit_predict(uniform)
    assert engine.stability(uniform, labels, k=8) < 0.95


# --------------------------------------------------------------------------- retrains


def test_match_centroids_recovers_a_permutation():
    previous = np.random.default_rng(4).normal(scale=3, size=(5, 4))
    order = np.array([3, 0, 4, 1, 2])
    new = previous[order] + 0.01
    assert engine.match_centroids(previous, new) == {i: int(p) for i, p in enumerate(order)}


def test_match_centroids_leaves_far_and_extra_clusters_unmatched():
    previous = np.array([[0.0, 0.0], [10.0, 0.0]])
    new = np.array([[10.0, 0.2], [0.1, 0.0], [50.0, 50.0]])
    assert engine.match_centroids(previous, new) == {0: 1, 1: 0}
    far = np.array([[0.0, 0.1], [30.0, 0.0]])
    assert engine.match_centroids(previous, far, max_distance=1.0) == {0: 0}
    scaled = engine.match_centroids(previous, far, scale=[100.0, 1.0], max_distance=1.0)
    assert scaled == {0: 0, 1: 1}


def test_match_centroids_pairs_only_what_is_allowed_and_never_steals_a_closer_pair():
    previous = np.array([[0.0, 0.0], [5.0, 0.0], [10.0, 0.0]])
    new = np.array([[0.2, 0.0], [5.2, 0.0], [10.2, 0.0]])
    allowed = np.ones((3, 3), dtype=bool)
    allowed[0, 0] = False  # e.g. the new cluster 0 is another archetype than old cluster 0

    assert engine.match_centroids(previous, new, allowed=allowed, max_distance=1) == {1: 1, 2: 2}
    # Even without a distance limit, new cluster 0 does not take old segment 1 away from the
    # new cluster right on top of it: it stays unmatched (a new segment).
    assert engine.match_centroids(previous, new, allowed=allowed) == {1: 1, 2: 2}
    assert engine.match_centroids(previous, new) == {0: 0, 1: 1, 2: 2}


def test_match_centroids_never_trades_a_close_pair_for_two_farther_ones():
    previous = np.array([[0.0, 0.0], [1.3, 0.0]])
    new = np.array([[0.1, 0.0], [-1.0, 0.0]])

    assert engine.match_centroids(previous, new, max_distance=1.5) == {0: 0}


def test_the_product_owner_s_segment_goes_on_in_the_cluster_nearest_to_it():
    # One feature. Old segments X = 0 and Y = 0.85 (the same archetype); the new run finds
    # A = 0.1 and B = -0.75. X is 0.1 from A: it goes on in A. Y is then 1.6 from B, over the
    # 1.5 limit, so B is a new segment. (Minimising the total distance gave X to B and Y to
    # A, moving the edited strategy of X onto customers 0.75 sd away from it.)
    previous = np.array([[0.0], [0.85]])
    new = np.array([[0.1], [-0.75]])
    same_archetype = np.ones((2, 2), dtype=bool)

    pairs = engine.match_centroids(previous, new, max_distance=1.5, allowed=same_archetype)

    assert pairs == {0: 0}


# --------------------------------------------------------------------------- log / outliers


def test_a_lognormal_money_column_is_read_on_a_log_scale_and_a_normal_one_is_not():
    rng = np.random.default_rng(3)
    X = np.c_[rng.lognormal(3.5, 0.8, 2000), rng.normal(50.0, 10.0, 2000)]

    assert engine.skewed_columns(X, [True, True]).tolist() == [True, False]
    # A feature the catalogue does not allow on a log scale (age, a score) never is.
    assert engine.skewed_columns(X, [False, True]).tolist() == [False, False]


def test_a_pipeline_on_a_log_scale_predicts_raw_rows_like_the_compact_model():
    X, _truth = money_data()
    pipeline = engine.fit(X, k=2, log_columns=[False, True])
    sigma2 = engine.within_variance(pipeline, len(X))
    compact = engine.CompactModel.from_pipeline(pipeline, sigma2)
    fresh, _ = money_data(300, seed=9)  # raw rows, in money

    full, fast = engine.score(pipeline, fresh, sigma2=sigma2), compact.score(fresh)

    assert engine.log_mask_of(pipeline).tolist() == [False, True]
    np.testing.assert_array_equal(fast.cluster, pipeline.predict(fresh))
    np.testing.assert_array_equal(fast.cluster, full.cluster)
    np.testing.assert_allclose(fast.confidence, full.confidence, atol=1e-12)
    # The centre is back in money: between the two groups' typical incomes, not near log(x).
    assert sorted(engine.centroids_original(pipeline)[:, 1]) == pytest.approx(
        [np.exp(3.3), np.exp(4.5)], rel=0.15
    )


def test_a_customer_50_sd_away_is_an_outlier_and_clean_data_has_none():
    rng = np.random.default_rng(4)
    clean = rng.normal(size=(2000, 3))
    assert not engine.robust_outliers(clean).any()

    planted_outlier = clean.copy()
    planted_outlier[123, 1] = 50.0
    assert np.flatnonzero(engine.robust_outliers(planted_outlier)).tolist() == [123]


def test_compact_model_scores_like_the_pipeline():
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(c, 3.0, size=(200, 4)) for c in ((20, 30, 20, 5), (50, 90, 80, 30))])
    pipeline = engine.fit(X, k=2, random_state=0)
    sigma2 = engine.within_variance(pipeline, len(X))
    compact = engine.CompactModel.from_pipeline(pipeline, sigma2)

    full, fast = engine.score(pipeline, X, sigma2=sigma2), compact.score(X)

    np.testing.assert_array_equal(fast.cluster, pipeline.predict(X))
    np.testing.assert_allclose(fast.confidence, full.confidence, atol=1e-12)
    assert compact.explain(X[0], int(fast.cluster[0]), FEATURES) == engine.explain(
        pipeline, X[0], int(fast.cluster[0]), FEATURES
    )
