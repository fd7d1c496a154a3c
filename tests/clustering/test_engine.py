"""Tests of the pure clustering engine: numpy arrays only, no database."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from clustering import engine

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


def planted(n_rows: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CENTERS), n_rows)
    return CENTERS[truth] + rng.normal(size=(n_rows, 4)) * SPREAD, truth


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
    with pytest.raises(ValueError):
        engine.validate_features(("annual_income", "age"))  # wrong order
    with pytest.raises(ValueError):
        engine.validate_features(("age",))
    with pytest.raises(ValueError):
        engine.sweep(data[:, :2], feature_names=("age", "annual_income", "spending_score"))
    with pytest.raises(ValueError):
        engine.sweep(data[:5], k_values=(2, 5))


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


def test_planted_clusters_get_the_four_archetypes(model):
    names = engine.name_clusters(engine.centroids_sd(model), engine.FEATURES)
    assert sorted(n.archetype for n in names) == sorted(PLANTED_ARCHETYPES)
    assert len({n.name for n in names}) == 4
    assert all(n.matched for n in names)
    # Each planted blob gets the persona it was built as.
    nearest = np.argmin(
        np.linalg.norm(engine.centroids_original(model)[:, None] - CENTERS[None], axis=2), axis=1
    )
    assert [PLANTED_ARCHETYPES[i] for i in nearest] == [n.archetype for n in names]


def test_reason_lists_decisive_features_in_sd(model):
    names = engine.name_clusters(engine.centroids_sd(model), engine.FEATURES)
    high_value = next(n for n in names if n.archetype == "high_value")
    assert high_value.reason.startswith("income +")
    assert "spending +" in high_value.reason
    assert high_value.reason.count(" sd") >= 2


def test_names_are_unique_at_k10(data):
    ten = engine.fit(data, k=10)
    names = engine.name_clusters(engine.centroids_sd(ten), engine.FEATURES)
    assert len({n.name for n in names}) == 10


def test_duplicates_get_a_number_suffix():
    names = engine.name_clusters(np.zeros((3, 4)), engine.FEATURES)
    assert [n.name for n in names] == [
        "Average Mainstream",
        "Average Mainstream 2",
        "Average Mainstream 3",
    ]


def test_more_clusters_than_archetypes_stay_unique():
    centroids = np.random.default_rng(5).normal(scale=1.2, size=(15, 4))
    names = engine.name_clusters(centroids, engine.FEATURES)
    assert len({n.name for n in names}) == 15


def test_rules_needing_a_missing_feature_do_not_apply():
    features = ("age", "annual_income")
    names = engine.name_clusters(np.array([[0.0, 1.5], [0.1, -1.4], [0.0, 0.1]]), features)
    assert [n.archetype for n in names] == ["affluent", "modest", "mainstream"]
    assert "spending" not in " ".join(n.reason for n in names)


def test_every_archetype_has_a_strategy():
    assert set(engine.STRATEGIES) == {a.key for a in engine.ARCHETYPES}
    for strategy in engine.STRATEGIES.values():
        assert strategy.description
        assert 3 <= len(strategy.actions) <= 5


# --------------------------------------------------------------------------- explain


def test_explain_compares_in_original_units_and_sd(data, model):
    row = data[7]
    cluster = int(model.predict(row.reshape(1, -1))[0])
    rows = engine.explain(model, row, cluster, engine.FEATURES)
    scaler = model[0]
    centre = engine.centroids_original(model)[cluster]
    assert [r.feature for r in rows] == list(engine.FEATURES)
    for i, r in enumerate(rows):
        assert r.value == pytest.approx(row[i])
        assert r.centroid_value == pytest.approx(centre[i])
        assert r.diff_sd == pytest.approx((row[i] - centre[i]) / scaler.scale_[i])
    same = engine.explain(engine.centroids_sd(model), row, cluster, engine.FEATURES, scaler)
    assert same == rows


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


def test_match_centroids_pairs_only_what_is_allowed_and_keeps_the_rest_optimal():
    previous = np.array([[0.0, 0.0], [5.0, 0.0], [10.0, 0.0]])
    new = np.array([[0.2, 0.0], [5.2, 0.0], [10.2, 0.0]])
    allowed = np.ones((3, 3), dtype=bool)
    allowed[0, 0] = False  # e.g. the new cluster 0 is another archetype than old cluster 0

    assert engine.match_centroids(previous, new, allowed=allowed, max_distance=1) == {1: 1, 2: 2}
    # Without a distance limit the forbidden pair's partners pair up the other way.
    assert engine.match_centroids(previous, new, allowed=allowed) == {0: 1, 1: 0, 2: 2}
    assert engine.match_centroids(previous, new) == {0: 0, 1: 1, 2: 2}


def test_match_centroids_never_trades_a_close_pair_for_two_farther_ones():
    previous = np.array([[0.0, 0.0], [1.3, 0.0]])
    new = np.array([[0.1, 0.0], [-1.0, 0.0]])

    assert engine.match_centroids(previous, new, max_distance=1.5) == {0: 0}


def test_compact_model_scores_like_the_pipeline():
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(c, 3.0, size=(200, 4)) for c in ((20, 30, 20, 5), (50, 90, 80, 30))])
    pipeline = engine.fit(X, k=2, random_state=0)
    sigma2 = engine.within_variance(pipeline, len(X))
    compact = engine.CompactModel.from_pipeline(pipeline, sigma2)

    full, fast = engine.score(pipeline, X, sigma2=sigma2), compact.score(X)

    np.testing.assert_array_equal(fast.cluster, pipeline.predict(X))
    np.testing.assert_allclose(fast.confidence, full.confidence, atol=1e-12)
    assert compact.explain(X[0], int(fast.cluster[0]), engine.FEATURES) == engine.explain(
        pipeline, X[0], int(fast.cluster[0]), engine.FEATURES
    )
