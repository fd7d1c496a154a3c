"""Tests of the other algorithms, the stability check and the choice between them (arrays
only, no database): each on data with a planted structure it should find."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from clustering import algorithms, engine

NO_LOG = np.zeros(2, dtype=bool)


def elongated(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two long thin parallel clouds: K-Means cuts them across, a mixture does not."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2)) * [6.0, 0.4]
    b = rng.normal(size=(n, 2)) * [6.0, 0.4] + [0.0, 3.0]
    return np.vstack([a, b]) + 50.0, np.r_[np.zeros(n), np.ones(n)]


def blobs_with_noise(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight groups of 300 plus 90 customers spread uniformly around them (truth -1)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 9.0]])
    groups = np.repeat(np.arange(3), 300)
    X = centres[groups] + rng.normal(size=(900, 2)) * 0.6
    noise = rng.uniform(-15, 25, size=(90, 2))
    return np.vstack([X, noise]), np.r_[groups, np.full(90, -1)]


def fitted(algorithm: str, X: np.ndarray, k_values=range(2, 7), k_fixed=None):
    # A segment needs 25 customers: a chance clump of the uniform noise is not one.
    return algorithms.sweep_and_fit(
        algorithm, X, X, k_values=k_values, k_fixed=k_fixed, log_mask=NO_LOG,
        min_share=0.01, min_size=25,
    )  # fmt: skip


def labels_of(result: algorithms.Fitted, X: np.ndarray) -> engine.Scores:
    return engine.score(result.pipeline, X, sigma2=engine.within_variance(result.pipeline, len(X)))


def test_a_mixture_recovers_elongated_groups_that_k_means_splits():
    X, truth = elongated()
    kmeans, mixture = fitted("kmeans", X), fitted("gmm", X)

    assert mixture.k == 2
    assert adjusted_rand_score(truth, labels_of(mixture, X).cluster) > 0.95
    assert kmeans.k > 2  # the round-cloud model cuts each long cloud into pieces
    assert adjusted_rand_score(truth, labels_of(kmeans, X).cluster) < 0.8


def test_a_mixture_chooses_k_by_the_lowest_bic_and_reports_it():
    X, _ = elongated()
    mixture = fitted("gmm", X)

    assert len(mixture.bic_by_k) == len(mixture.sweep.k_values)
    assert mixture.k == mixture.sweep.k_values[int(np.argmin(mixture.bic_by_k))]


def test_mixture_confidence_is_its_own_posterior_and_sums_to_one_with_the_others():
    X, _ = elongated()
    pipeline = fitted("gmm", X).pipeline
    sigma2 = engine.within_variance(pipeline, len(X))
    scores = engine.score(pipeline, X, sigma2=sigma2)
    proba = pipeline.predict_proba(X)  # scikit-learn's own, through the pipeline

    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.allclose(scores.confidence, proba.max(axis=1))
    runner_up = np.sort(proba, axis=1)[:, -2]
    assert np.allclose(scores.runner_up_probability, runner_up)
    compact = engine.CompactModel.from_pipeline(pipeline, sigma2, 1e9)
    assert np.allclose(compact.probabilities(X[:50]), proba[:50])
    assert np.array_equal(compact.score(X[:50]).cluster, scores.cluster[:50])


def test_hdbscan_puts_most_planted_noise_in_unsegmented_and_keeps_the_groups():
    X, truth = blobs_with_noise()
    result = fitted("hdbscan", X)
    labels = labels_of(result, X).cluster

    assert result.k == 3
    noise = truth == -1
    assert (labels[noise] == algorithms.NOISE).mean() > 0.6
    assert (labels[~noise] == algorithms.NOISE).mean() < 0.05
    assert adjusted_rand_score(truth[~noise], labels[~noise]) > 0.95


def test_hdbscan_places_new_customers_by_its_membership_rule():
    X, _ = blobs_with_noise()
    pipeline = fitted("hdbscan", X).pipeline
    compact = engine.CompactModel.from_pipeline(pipeline, 1.0, 1e9)
    centre_of_group = X[:300].mean(axis=0)
    far_away = np.array([60.0, 60.0])

    placed = compact.score(np.vstack([centre_of_group, far_away]))

    assert placed.cluster[0] != algorithms.NOISE and placed.confidence[0] > 0.5
    assert placed.cluster[1] == algorithms.NOISE and placed.confidence[1] == 0.0
    assert placed.runner_up[1] != algorithms.NOISE  # the nearest segment, for reference


def test_hdbscan_scoring_with_the_fits_labels_gives_what_placing_them_again_gives():
    # The service hands the fit's labels to scoring instead of placing everyone twice;
    # segments, confidences and runner-ups must be those of placing them afresh.
    X, _ = blobs_with_noise()
    pipeline = fitted("hdbscan", X).pipeline
    assert (pipeline[-1].labels_ == algorithms.NOISE).any()

    again = engine.score(pipeline, X, sigma2=1.0)
    reused = engine.score(pipeline, X, sigma2=1.0, placed=pipeline[-1].labels_)

    assert np.array_equal(reused.cluster, again.cluster)
    assert np.array_equal(reused.confidence, again.confidence)
    assert np.array_equal(reused.runner_up, again.runner_up)
    assert np.array_equal(reused.runner_up_probability, again.runner_up_probability)


def test_ward_finds_planted_groups_and_scores_all_customers():
    X, truth = blobs_with_noise()
    groups = truth >= 0
    result = fitted("ward", X[groups], k_values=range(2, 6))

    assert result.k == 3
    assert adjusted_rand_score(truth[groups], labels_of(result, X[groups]).cluster) > 0.99


def test_ward_on_a_sample_places_the_others_at_the_nearest_centre(monkeypatch):
    monkeypatch.setattr(algorithms, "WARD_SAMPLE_MAX", 200)
    X, truth = blobs_with_noise()
    groups = truth >= 0
    result = fitted("ward", X[groups], k_values=(3,))

    assert result.sweep.sweep_sample_size == 200
    assert adjusted_rand_score(truth[groups], labels_of(result, X[groups]).cluster) > 0.99


def test_hdbscan_refits_sharing_one_neighbour_search_label_as_hdbscan_itself():
    X, _ = blobs_with_noise()
    Xs = StandardScaler().fit_transform(X)
    shared = algorithms.SharedNeighbours(Xs, min_samples=20, fraction=0.8)
    rng = np.random.default_rng(0)

    for _ in range(3):
        rows = rng.choice(len(Xs), 792, replace=False)
        expected = HDBSCAN(min_cluster_size=20, copy=True).fit_predict(Xs[rows])
        labels = shared.labels(rows, 20)
        # The same groups and the same Unsegmented rows; the groups' numbers may differ.
        np.testing.assert_array_equal(labels == -1, expected == -1)
        assert adjusted_rand_score(expected, labels) == 1.0


def test_hdbscan_stability_from_the_fits_own_neighbour_search_is_the_same():
    """The refits may start from the fit's neighbour search (same customers): the answer
    is the one their own search gives, and the search is not saved with the model."""
    import pickle

    X, _ = blobs_with_noise()
    Xs = StandardScaler().fit_transform(X)
    segmenter = algorithms.DensitySegments(min_cluster_size=25).fit(Xs)
    labels, k = segmenter.labels_, int(segmenter.labels_.max()) + 1

    alone = algorithms.stability("hdbscan", Xs, labels, k=k, min_size=25)
    shared = algorithms.stability(
        "hdbscan", Xs, labels, k=k, min_size=25, neighbour_search=segmenter.neighbour_search_
    )

    assert shared == alone
    assert alone.mean > 0.9
    assert not hasattr(pickle.loads(pickle.dumps(segmenter)), "neighbour_search_")


def test_mixtures_sharing_k_means_starts_are_scikit_learns_fits():
    from sklearn.mixture import GaussianMixture

    X, _ = elongated()
    starts: dict = {}
    for kind in algorithms.COVARIANCE_TYPES:
        for k in (2, 3, 4):
            shared = algorithms._mixture(k, kind, 0, starts).fit(X)
            plain = GaussianMixture(
                k, covariance_type=kind, n_init=algorithms.GMM_N_INIT, random_state=0,
                reg_covar=1e-5,
            ).fit(X)  # fmt: skip
            np.testing.assert_allclose(shared.means_, plain.means_)
            np.testing.assert_allclose(shared.bic(X), plain.bic(X))
    # Each K's starts were computed once, for the first covariance type.
    assert len(starts) == 3 * algorithms.GMM_N_INIT


def test_the_ward_tree_cuts_as_scipys_linkage():
    from scipy.cluster.hierarchy import fcluster, linkage

    X, _ = blobs_with_noise()
    Xs = StandardScaler().fit_transform(X)
    ours, scipys = algorithms.ward_tree(Xs), linkage(Xs, method="ward")

    np.testing.assert_allclose(ours[:, 2], scipys[:, 2], rtol=1e-9)
    for k in range(2, 11):
        np.testing.assert_array_equal(
            fcluster(ours, k, criterion="maxclust"), fcluster(scipys, k, criterion="maxclust")
        )


def test_the_segment_dendrogram_merges_the_two_closest_planted_groups_first():
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [10.0, 20.0]])
    merges = algorithms.segment_tree(centres, [100, 100, 100, 100])

    assert {merges[0].left, merges[0].right} == {0, 1}
    assert [m.height for m in merges] == sorted(m.height for m in merges)
    assert merges[-1].size == 400
    drawing = algorithms.draw_tree(merges, 4)
    assert sorted(leaf for leaf, _x in drawing.leaves) == [0, 1, 2, 3]
    assert len(drawing.lines) == 3 * 3


def test_every_algorithm_reports_sklearns_silhouette_of_its_labels():
    X, truth = blobs_with_noise()
    Xs = StandardScaler().fit_transform(X)
    for algorithm in ("kmeans", "gmm", "ward", "hdbscan"):
        result = fitted(algorithm, X, k_values=(3,), k_fixed=3)
        labels = labels_of(result, X).cluster
        kept = labels != algorithms.NOISE
        reported = algorithms.quality(Xs, labels).silhouette

        assert reported == pytest.approx(silhouette_score(Xs[kept], labels[kept]), abs=1e-9)


# --------------------------------------------------------------------------- stability


def test_stability_is_high_with_a_spread_for_planted_groups_and_low_for_noise():
    X, truth = blobs_with_noise()
    groups = truth >= 0
    Xs = StandardScaler().fit_transform(X[groups])
    clear = algorithms.stability("kmeans", Xs, truth[groups], k=3)

    rng = np.random.default_rng(1)
    uniform = StandardScaler().fit_transform(rng.uniform(size=(900, 2)))
    cut = fitted("kmeans", uniform, k_values=(8,), k_fixed=8)
    vague = algorithms.stability("kmeans", uniform, labels_of(cut, uniform).cluster, k=8)

    assert clear.refits == 10 and clear.mean > 0.98 and clear.spread < 0.02
    assert min(clear.by_segment) > 0.98
    assert vague.mean < clear.mean and vague.spread > clear.spread


def test_a_segment_that_falls_apart_on_resampling_has_a_low_together_share():
    rng = np.random.default_rng(2)
    tight = rng.normal(size=(300, 2)) * 0.3
    # A wide, flat cloud beside it, cut arbitrarily into three by K-Means.
    wide = rng.uniform([5, -8], [7, 8], size=(600, 2))
    Xs = StandardScaler().fit_transform(np.vstack([tight, wide]))
    labels = fitted("kmeans", Xs, k_values=(4,), k_fixed=4)
    scores = labels_of(labels, Xs).cluster
    result = algorithms.stability("kmeans", Xs, scores, k=4)

    tight_segment = np.bincount(scores[:300]).argmax()
    assert result.by_segment[tight_segment] > 0.95
    assert min(result.by_segment) < result.by_segment[tight_segment]


# --------------------------------------------------------------------------- choice


def test_the_recommendation_is_the_best_silhouette_among_stable_algorithms():
    candidates = [
        algorithms.CandidateScore("kmeans", 0.55, 0.95),
        algorithms.CandidateScore("gmm", 0.61, 0.85),
        algorithms.CandidateScore("hdbscan", 0.72, 0.50),  # best silhouette, not stable
        algorithms.CandidateScore("ward", float("nan"), 0.99),
    ]
    assert algorithms.recommend(candidates) == "gmm"


def test_unsegmented_customers_count_as_zero_in_the_recommendation():
    candidates = [
        algorithms.CandidateScore("kmeans", 0.60, 0.99),
        # Higher on the customers it keeps, but 10 % are in no segment: 0.63 x 0.9 = 0.567.
        algorithms.CandidateScore("hdbscan", 0.63, 0.97, noise_share=0.10),
    ]
    assert algorithms.recommend(candidates) == "kmeans"


def test_without_a_stable_algorithm_the_most_stable_is_recommended():
    candidates = [
        algorithms.CandidateScore("kmeans", 0.40, 0.60),
        algorithms.CandidateScore("ward", 0.50, 0.70),
    ]
    assert algorithms.recommend(candidates) == "ward"


# --------------------------------------------------------------------------- consensus


def test_co_association_keeps_planted_groups_together_and_apart():
    X, truth = blobs_with_noise()
    groups = truth >= 0
    Xs = StandardScaler().fit_transform(X[groups])[::3]
    shares = algorithms.co_association(Xs, 3)
    same = truth[groups][::3][:, None] == truth[groups][::3][None, :]

    assert shares[same].mean() > 0.95 and shares[~same].mean() < 0.05
    assert np.allclose(np.diag(shares), 1.0) and np.allclose(shares, shares.T)


def test_the_consensus_recovers_planted_groups():
    X, truth = blobs_with_noise()
    groups = truth >= 0
    result = algorithms.consensus_fit(
        X[groups], X[groups], k_values=range(2, 6), k_guess=3, log_mask=NO_LOG, min_share=0.01
    )

    assert result.k == 3
    assert adjusted_rand_score(truth[groups], labels_of(result, X[groups]).cluster) > 0.99


def test_a_consensus_is_kept_only_when_the_rule_prefers_it_to_every_part():
    parts = [
        algorithms.CandidateScore("kmeans", 0.50, 0.9),
        algorithms.CandidateScore("ward", 0.55, 0.9),
    ]
    better = algorithms.CandidateScore("ensemble", 0.56, 0.85)
    between = algorithms.CandidateScore("ensemble", 0.52, 0.95)
    unstable = algorithms.CandidateScore("ensemble", 0.70, 0.60)

    assert algorithms.consensus_kept(parts, better)
    assert not algorithms.consensus_kept(parts, between)
    assert not algorithms.consensus_kept(parts, unstable)


def tilted(n: int = 500, seed: int = 0) -> np.ndarray:
    """Two long thin clouds tilted opposite ways (+45° and -45°): correlated features whose
    shapes differ, which only full covariances describe."""
    rng = np.random.default_rng(seed)
    thin = rng.normal(size=(2 * n, 2)) * [5.0, 0.3]
    turn = np.sqrt(0.5)
    up = thin[:n] @ np.array([[turn, turn], [-turn, turn]])
    down = thin[n:] @ np.array([[turn, -turn], [turn, turn]]) + [20.0, 0.0]
    return np.vstack([up, down]) + 50.0


def test_bic_chooses_a_diagonal_or_round_mixture_for_axis_aligned_groups():
    X, truth = blobs_with_noise()
    X = X[truth >= 0] * [1.0, 3.0]  # stretched along an axis, never tilted
    result = fitted(algorithms.GMM, X)
    assert result.covariance_type in ("diag", "spherical")
    assert adjusted_rand_score(truth[truth >= 0], result.pipeline[-1].labels_) > 0.95


def test_bic_chooses_full_covariances_for_elongated_correlated_groups():
    result = fitted(algorithms.GMM, tilted())
    assert result.covariance_type == "full"
    assert result.k == 2


def test_a_covariance_type_set_by_the_user_is_the_one_fitted():
    result = fitted(algorithms.GMM, tilted(), k_fixed=2, k_values=[2])
    assert result.covariance_type == "full"
    spherical = algorithms.sweep_and_fit(
        algorithms.GMM, tilted(), tilted(), k_values=[2], k_fixed=2, log_mask=NO_LOG,
        min_share=0.01, min_size=25, covariance="spherical",
    )  # fmt: skip
    assert spherical.covariance_type == "spherical"
    assert spherical.pipeline[-1].mixture_.covariance_type == "spherical"
    with pytest.raises(ValueError, match="covariance type must be one of"):
        algorithms.covariance_types("round")
