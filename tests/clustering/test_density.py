"""HDBSCAN's spanning tree by Boruvka on a KD-tree (clustering.density) against Prim's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import HDBSCAN
from sklearn.cluster._hdbscan._linkage import mst_from_data_matrix
from sklearn.datasets import make_blobs
from sklearn.metrics import DistanceMetric, adjusted_rand_score

from clustering import density


def shapes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    blobs = make_blobs(1_500, n_features=4, centers=4, random_state=0)[0]
    noisy = np.vstack(
        [
            make_blobs(1_200, n_features=4, centers=3, cluster_std=0.5, random_state=3)[0],
            rng.uniform(-12, 12, size=(300, 4)),
        ]
    )
    return {
        "planted groups": blobs,
        "groups in uniform noise": noisy,
        "uniform": rng.uniform(size=(1_500, 4)),
        # Real customer files repeat rows: ages and scores are whole numbers.
        "repeated rows": np.round(make_blobs(1_500, n_features=4, centers=5, random_state=2)[0]),
        "a small grid": rng.integers(0, 5, size=(1_500, 3)).astype(float),
        "two far groups": np.vstack([rng.normal(0, 1, (700, 2)), rng.normal(60, 1, (800, 2))]),
        # Customers whose blank values were all filled with the same defaults.
        "many copies of one customer": np.vstack(
            [rng.normal(0, 1, (500, 3)), np.zeros((1_000, 3))]
        ),
    }


def prims_tree(X: np.ndarray, core: np.ndarray) -> np.ndarray:
    return mst_from_data_matrix(X, core, DistanceMetric.get_metric("euclidean"), 1.0)


@pytest.mark.parametrize("shape", list(shapes()))
@pytest.mark.parametrize("min_samples", [5, 40])
def test_the_tree_is_a_minimum_spanning_tree_as_prims(shape, min_samples):
    X = np.ascontiguousarray(shapes()[shape])
    core, hoods = density.core_distances(X, min_samples)

    ours = density.spanning_tree(X, core, hoods)
    prims = prims_tree(X, core)

    assert len(ours) == len(X) - 1
    graph = coo_matrix(
        (np.ones(len(ours)), (ours["current_node"], ours["next_node"])), shape=(len(X),) * 2
    )
    assert connected_components(graph, directed=False)[0] == 1
    # Every edge weighs its mutual reachability distance, and the total is the minimum.
    a, b = ours["current_node"], ours["next_node"]
    gap = np.linalg.norm(X[a] - X[b], axis=1)
    np.testing.assert_allclose(ours["distance"], np.maximum.reduce([core[a], core[b], gap]))
    np.testing.assert_allclose(np.sort(ours["distance"]), np.sort(prims["distance"]), rtol=1e-12)


def test_core_distances_are_scikit_learns():
    X = shapes()["groups in uniform noise"]
    core, _ = density.core_distances(X, 15)

    from sklearn.neighbors import NearestNeighbors

    expected = NearestNeighbors(n_neighbors=15).fit(X).kneighbors(X)[0][:, -1]
    np.testing.assert_allclose(core, expected)


@pytest.mark.parametrize("shape", ["planted groups", "two far groups"])
def test_labels_are_scikit_learns_hdbscan(shape):
    X = shapes()[shape]

    ours = density.hdbscan_labels(X, 30)
    theirs = HDBSCAN(min_cluster_size=30, copy=True).fit_predict(X)

    assert ours.max() == theirs.max() >= 1
    assert adjusted_rand_score(theirs, ours) == 1.0
    np.testing.assert_array_equal(ours == -1, theirs == -1)


@pytest.mark.parametrize("shape", ["groups in uniform noise", "repeated rows"])
def test_where_merges_tie_the_groups_are_hdbscans_but_for_a_few_border_customers(shape):
    """Mutual reachability makes equal distances common (every neighbour within a
    customer's core distance is at that distance); where customers join a group at one
    exact distance the two trees may list those merges in another order, and a few border
    customers fall out as Unsegmented in one and not the other. The groups are the same."""
    X = shapes()[shape]

    ours = density.hdbscan_labels(X, 30)
    theirs = HDBSCAN(min_cluster_size=30, copy=True).fit_predict(X)

    assert ours.max() == theirs.max() >= 1
    assert adjusted_rand_score(theirs, ours) > 0.98
    assert abs((ours == -1).sum() - (theirs == -1).sum()) <= 0.01 * len(X)


def test_more_samples_than_customers_is_refused_as_scikit_learn_does():
    with pytest.raises(ValueError, match="min_samples"):
        density.hdbscan_labels(np.zeros((4, 2)), 5)
