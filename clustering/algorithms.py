"""Segmentations beyond K-Means: Gaussian mixture, HDBSCAN and Ward (pure: no Django).

Each algorithm goes through the engine's pipeline (LogColumns, StandardScaler, then the
segmenter), so transforms, missing values, outliers, saving and prediction stay one path.
Every segmenter exposes what the engine reads from a fitted K-Means: ``cluster_centers_``
(in the scaled space), ``inertia_`` (within-segment sum of squares) and ``assign`` (the
engine's ``Scores`` for scaled rows), so naming, matching, statistics and serving are the
same for all of them.

* ``gmm``: GaussianMixture. The number of components, and the covariance type unless the
  user sets it, are the pair with the lowest BIC (``GMM_RULE``); confidence is the
  model's own posterior probability and the runner-up the second most probable component.
* ``hdbscan``: scikit-learn's HDBSCAN on at most ``DENSITY_SAMPLE_MAX`` customers, its
  spanning tree built by ``clustering.density`` (Boruvka on a KD-tree). Customers
  in no dense group are "Unsegmented" (label ``NOISE``). New customers follow
  ``HDBSCAN_MEMBERSHIP_RULE``.
* ``ward``: Ward's hierarchical clustering on at most ``WARD_SAMPLE_MAX`` customers, cut
  at each K (one tree gives every K); the other customers go to the nearest centre.

``segment_tree`` builds the dendrogram of the segments (not customers) for any run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import fastcluster
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline

from clustering import density, engine
from clustering.bands import SEGMENT_STABILITY_BANDS
from clustering.encoding import OneHotColumns

KMEANS, GMM, HDBSCAN_KEY, WARD = "kmeans", "gmm", "hdbscan", "ward"
ALGORITHMS: dict[str, str] = {
    KMEANS: "K-Means",
    GMM: "Gaussian mixture",
    HDBSCAN_KEY: "HDBSCAN (density)",
    WARD: "Ward hierarchical",
}
COMPARE = "compare"
# The label of a customer in no dense group (HDBSCAN's own convention).
NOISE = -1
# The archetype of their group: shown as "Unsegmented", never named as a persona.
UNSEGMENTED = "unsegmented"

GMM_COVARIANCE = "full"
# The mixture's covariance types; "auto" lets the BIC choose among them.
COVARIANCE_AUTO = "auto"
COVARIANCE_TYPES: dict[str, str] = {
    "full": "full (any shape and tilt)",
    "diag": "diagonal (axis-aligned ellipses)",
    "tied": "tied (one shared shape)",
    "spherical": "spherical (round)",
}
GMM_N_INIT = 2
# The mixture's K sweep and fit read at most this many customers; the rest are scored.
GMM_SAMPLE_MAX = 20_000
# Ward needs the condensed distance matrix of its sample: 10,000 rows = 400 MB.
WARD_SAMPLE_MAX = 10_000
DENSITY_SAMPLE_MAX = 20_000
# Kept members per dense segment for placing new customers (serving stays small).
DENSITY_EXEMPLARS_MAX = 2_000
# A segment's reach: this quantile of its kept members' distances to their nearest other
# member (the widest gaps are its fringe; measured to leave as much planted noise
# Unsegmented as HDBSCAN itself does).
REACH_QUANTILE = 0.95
# Resampled refits behind a run's stability, each on this share of the working rows.
STABILITY_REFITS = 10
STABILITY_FRACTION = 0.8
STABILITY_SAMPLE_MAX = 5_000

STABILITY_RULE = (
    f"We refit the same algorithm {STABILITY_REFITS} times, each on a random "
    f"{STABILITY_FRACTION:.0%} of (at most {STABILITY_SAMPLE_MAX:,}) customers, and measure how "
    "often pairs of customers end up together again (adjusted Rand index: 1 = identical, "
    "0 = chance): the mean, ± how much the refits differ. Each segment's card says what "
    "share of its customers' pairs stay together; below "
    f"{SEGMENT_STABILITY_BANDS[0].minimum:.0%} it falls apart on resampling."
).replace("%", " %")
GMM_RULE = (
    "We fit a Gaussian mixture for each number of segments and each covariance type (full, "
    "diagonal, tied, spherical; or only the one you set) and keep the pair with the lowest "
    "BIC (the fit penalised by the number of parameters, so a rounder shape wins unless the "
    "data need the tilt); the silhouette is shown for comparison."
)
WARD_RULE = (
    "Ward's method joins, step by step, the two groups whose merger adds least spread; we "
    "cut its tree at each number of segments and keep the cut with the highest silhouette "
    "(ties: fewer segments)."
)
HDBSCAN_RULE = (
    "HDBSCAN finds the dense groups itself: a group needs at least the smallest segment "
    "size; customers in no dense group are Unsegmented."
)
HDBSCAN_MEMBERSHIP_RULE = (
    "A customer joins the dense segment of the nearest of its kept members (up to 2,000 "
    "per segment) when closer to that member than 95 % of the segment's members are to "
    "their own nearest fellow member (the segment's reach); otherwise the customer is "
    "Unsegmented."
)
RECOMMENDATION_RULE = (
    "Recommended: the highest silhouette among the algorithms whose stability is at least "
    "0.80, counting Unsegmented customers as 0 (a customer in no segment is not well "
    "placed); when none is that stable, the most stable one."
)
RECOMMEND_MIN_STABILITY = 0.80


# --------------------------------------------------------------------------- helpers


def _centres(Xs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    return np.array([Xs[labels == c].mean(axis=0) for c in range(k)])


def _within_ss(Xs: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    kept = labels >= 0
    return float(((Xs[kept] - centres[labels[kept]]) ** 2).sum())


def _nearest_scores(d2: np.ndarray, sigma2: float) -> engine.Scores:
    """The engine's round-cloud confidence from squared distances to the centres."""
    proba = engine._softmax(d2, sigma2)
    top = engine._nearest_two(d2)
    rows = np.arange(len(d2))
    return engine.Scores(
        top[:, 0],
        proba[rows, top[:, 0]],
        top[:, 1],
        proba[rows, top[:, 1]],
        nearest_d2=d2.min(axis=1),
    )


def _sample(n_rows: int, max_rows: int, random_state: int | None) -> np.ndarray:
    rows = engine._sample_indices(n_rows, max_rows, random_state)
    return np.arange(n_rows) if rows is None else np.sort(rows)


# --------------------------------------------------------------------------- segmenters


class MixtureSegments(BaseEstimator):
    """A Gaussian mixture whose confidence is its own posterior probability."""

    def __init__(
        self,
        n_components: int = 2,
        covariance_type: str = GMM_COVARIANCE,
        random_state: int | None = 0,
        sample_max: int = GMM_SAMPLE_MAX,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.sample_max = sample_max

    def fit(self, Xs, y=None) -> MixtureSegments:
        Xs = np.asarray(Xs, dtype=np.float64)
        rows = _sample(len(Xs), self.sample_max, self.random_state)
        self.mixture_ = _mixture(self.n_components, self.covariance_type, self.random_state)
        self.mixture_.fit(Xs[rows])
        self.cluster_centers_ = self.mixture_.means_
        self.labels_ = self.mixture_.predict(Xs)
        self.inertia_ = _within_ss(Xs, self.labels_, self.cluster_centers_)
        self.bic_ = float(self.mixture_.bic(Xs[rows]))
        return self

    def predict(self, Xs) -> np.ndarray:
        return self.mixture_.predict(Xs)

    def predict_proba(self, Xs) -> np.ndarray:
        return self.mixture_.predict_proba(Xs)

    def assign(self, Xs: np.ndarray, sigma2: float) -> engine.Scores:
        proba = self.mixture_.predict_proba(Xs)
        top = np.argsort(-proba, axis=1, kind="stable")[:, :2]
        rows = np.arange(len(proba))
        d2 = cdist(Xs, self.cluster_centers_, "sqeuclidean")
        return engine.Scores(
            top[:, 0],
            proba[rows, top[:, 0]],
            top[:, 1],
            proba[rows, top[:, 1]],
            nearest_d2=d2[rows, top[:, 0]],
        )


def _mixture(
    k: int, covariance_type: str, random_state: int | None, starts: dict | None = None
) -> GaussianMixture:
    """The mixture of K components; ``starts``: k-means starts shared by the sweep's fits
    (without them, scikit-learn's own class: the saved model is a plain GaussianMixture)."""
    kind = GaussianMixture if starts is None else SharedStartsMixture
    mixture = kind(
        n_components=k,
        covariance_type=covariance_type,
        n_init=GMM_N_INIT,
        random_state=random_state,
        reg_covar=1e-5,
    )
    mixture.starts = starts
    return mixture


class SharedStartsMixture(GaussianMixture):
    """scikit-learn's GaussianMixture, whose k-means starts can be shared between fits.

    Each of its ``n_init`` starts runs ``KMeans(K, n_init=1)`` from the fit's random state.
    The sweep fits every covariance type at every K from the same seed on the same rows, so
    each type ran the very same k-means: with ``starts`` (a dict, one per sweep) the first
    type's labels and the random state after them are kept, and the other types read them.
    The fits are scikit-learn's, start for start (a test compares them); a fifth of the
    sweep's time was these repeated k-means."""

    starts: dict | None = None

    def _initialize_parameters(self, X, random_state, xp=None):
        if self.starts is None or self.init_params != "kmeans":
            return super()._initialize_parameters(X, random_state, xp=xp)
        before = random_state.get_state()
        key = (self.n_components, before[1].tobytes(), *before[2:])
        if key not in self.starts:
            start = KMeans(n_clusters=self.n_components, n_init=1, random_state=random_state)
            self.starts[key] = (start.fit(X).labels_, random_state.get_state())
        labels, after = self.starts[key]
        random_state.set_state(after)
        resp = np.zeros((len(X), self.n_components), dtype=X.dtype)
        resp[np.arange(len(X)), labels] = 1
        self._initialize(X, resp)


class CentreSegments(BaseEstimator):
    """Segments found on a sample (Ward), every customer placed at the nearest centre."""

    def __init__(self, centres=None) -> None:
        self.centres = centres

    def fit(self, Xs, y=None) -> CentreSegments:
        self.cluster_centers_ = np.asarray(self.centres, dtype=np.float64)
        self.labels_ = self.predict(Xs)
        self.inertia_ = _within_ss(np.asarray(Xs), self.labels_, self.cluster_centers_)
        return self

    def predict(self, Xs) -> np.ndarray:
        return cdist(np.asarray(Xs), self.cluster_centers_, "sqeuclidean").argmin(axis=1)

    def assign(self, Xs: np.ndarray, sigma2: float) -> engine.Scores:
        return _nearest_scores(cdist(Xs, self.cluster_centers_, "sqeuclidean"), sigma2)


class DensitySegments(BaseEstimator):
    """HDBSCAN's dense groups; ``assign`` gives NOISE to customers within no group's reach.

    The fit keeps up to DENSITY_EXEMPLARS_MAX members per group and each group's reach
    (REACH_QUANTILE of its kept members' nearest-member distances), so a new
    customer is placed by HDBSCAN_MEMBERSHIP_RULE without the training data."""

    def __init__(
        self,
        min_cluster_size: int = 10,
        random_state: int | None = 0,
        sample_max: int = DENSITY_SAMPLE_MAX,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.random_state = random_state
        self.sample_max = sample_max

    def fit(self, Xs, y=None) -> DensitySegments:
        Xs = np.asarray(Xs, dtype=np.float64)
        rows = _sample(len(Xs), self.sample_max, self.random_state)
        sample, size = Xs[rows], max(int(self.min_cluster_size), 5)
        search = density.neighbour_search(sample, size + density.LISTED_EXTRA)
        found = _hdbscan_labels(sample, size, density.core_distances(sample, size, search))
        # The stability refits, on these very customers, start from the same search.
        self.neighbour_search_ = search if len(rows) == len(Xs) else None
        if found.max() < 1:
            raise ValueError("no two dense groups: the customers form one cloud")
        self._keep_exemplars(Xs[rows], found)
        # Everyone, the fitted sample included, by the one membership rule: a customer's
        # stored segment is what a prediction from the same values answers.
        self.labels_ = self.predict(Xs)
        k = int(found.max()) + 1
        self.cluster_centers_ = _centres(Xs[rows], found, k)
        self.inertia_ = _within_ss(Xs, self.labels_, self.cluster_centers_)
        return self

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("neighbour_search_", None)  # the fit's working data, not the model's
        return state

    def _keep_exemplars(self, Xs: np.ndarray, labels: np.ndarray) -> None:
        rng = np.random.default_rng(self.random_state)
        exemplars, owners, reach = [], [], []
        for c in range(int(labels.max()) + 1):
            members = np.flatnonzero(labels == c)
            if len(members) > DENSITY_EXEMPLARS_MAX:
                members = rng.choice(members, DENSITY_EXEMPLARS_MAX, replace=False)
            points = Xs[members]
            gaps, _ = cKDTree(points).query(points, k=2)
            exemplars.append(points)
            owners.append(np.full(len(points), c))
            reach.append(float(np.quantile(gaps[:, 1], REACH_QUANTILE)) if len(points) > 1 else 0.0)
        self.exemplars_ = np.vstack(exemplars)
        self.exemplar_labels_ = np.concatenate(owners)
        self.reach_ = np.array(reach)

    def predict(self, Xs) -> np.ndarray:
        distance, nearest = cKDTree(self.exemplars_).query(np.asarray(Xs, np.float64))
        labels = self.exemplar_labels_[nearest].copy()
        labels[distance > self.reach_[labels]] = NOISE
        return labels

    def assign(
        self, Xs: np.ndarray, sigma2: float, placed: np.ndarray | None = None
    ) -> engine.Scores:
        """Members get the round-cloud confidence among the dense segments; Unsegmented
        customers get NOISE and confidence 0, with the nearest segment as runner-up.
        ``placed``: these rows' labels by the membership rule when already known (the
        fit's ``labels_``), so the training customers are not placed a second time."""
        scores = _nearest_scores(cdist(Xs, self.cluster_centers_, "sqeuclidean"), sigma2)
        labels = self.predict(Xs) if placed is None else np.asarray(placed)
        noise = labels == NOISE
        cluster = scores.cluster.copy()
        confidence = scores.confidence.copy()
        runner_up, runner_p = scores.runner_up.copy(), scores.runner_up_probability.copy()
        runner_up[noise], runner_p[noise] = cluster[noise], confidence[noise]
        cluster[noise], confidence[noise] = NOISE, 0.0
        # A member HDBSCAN placed by density may be nearer another segment's centre.
        moved = ~noise & (labels != cluster)
        cluster[moved] = labels[moved]
        return engine.Scores(cluster, confidence, runner_up, runner_p, scores.nearest_d2)


def ward_tree(Xs: np.ndarray) -> np.ndarray:
    """Ward's tree (scipy's linkage matrix) from the points themselves: fastcluster's
    nearest-neighbour chain on the groups' centres, without scipy's n x n distance matrix.
    The tree is scipy's ``linkage(Xs, "ward")`` (a test checks) except where rows tie
    (duplicate customers), whose merge order either may break its own way; 5 to 8 times
    faster on four features (README, benchmarks)."""
    return fastcluster.linkage_vector(np.ascontiguousarray(Xs, dtype=np.float64), method="ward")


def _hdbscan_labels(Xs: np.ndarray, min_cluster_size: int, known=(None, None)) -> np.ndarray:
    """scikit-learn's HDBSCAN(min_cluster_size) labels, its spanning tree built by
    clustering.density (the same clusters, several times faster). ``known``: the core
    distances and neighbour lists, when already searched."""
    return density.hdbscan_labels(Xs, max(int(min_cluster_size), 5), *known)


class SharedNeighbours:
    """The nearest neighbours of the stability rows, searched once for all the refits.

    HDBSCAN's first step is each row's core distance: the distance to its
    ``min_samples``-th nearest row (itself included). A refit on a subset reads it from
    these neighbours (the ``min_samples``-th that is in the subset), searching again only
    for the rare row with too few of them, and lists its nearest rows in the subset for
    the spanning tree (clustering.density); the condensed tree and the excess of mass are
    scikit-learn's own steps: the labels are those of
    ``HDBSCAN(min_cluster_size).fit_predict`` on the subset (a test checks), without ten
    neighbour searches."""

    def __init__(self, Xs: np.ndarray, *, min_samples: int, fraction: float, search=None) -> None:
        """``search``: the fit's own neighbour search on these rows (distance, index),
        which holds enough neighbours: the fit's ``min_samples`` is the refits' over
        ``fraction``, and the few rows short of them are searched for."""
        self.Xs = np.ascontiguousarray(Xs, dtype=np.float64)
        self.fraction = fraction
        if search is not None and len(search[0]) == len(self.Xs):
            self.distance, self.index = search
            return
        # Enough neighbours that a random ``fraction`` of them nearly always holds
        # ``min_samples``; the others are searched for.
        wanted = int(np.ceil(min_samples / fraction * 1.3)) + 10
        self.distance, self.index = density.neighbour_search(self.Xs, max(2, wanted))

    def labels(self, idx: np.ndarray, min_cluster_size: int) -> np.ndarray:
        """HDBSCAN's labels of the rows ``idx`` (NOISE for no dense group)."""
        size = max(int(min_cluster_size), 5)  # min_samples = min_cluster_size, as _hdbscan_labels
        X = np.ascontiguousarray(self.Xs[idx])
        inside = np.zeros(len(self.Xs), dtype=bool)
        inside[idx] = True
        found = np.cumsum(inside[self.index[idx]], axis=1)
        core = self.distance[idx, (found >= size).argmax(axis=1)]
        short = found[:, -1] < size
        if short.any():
            core[short] = cKDTree(X).query(X[short], k=max(2, size))[0][:, size - 1]
        return density.hdbscan_labels(X, size, np.ascontiguousarray(core), self._lists(idx, size))

    def _lists(self, idx: np.ndarray, size: int) -> density.Neighbourhoods:
        """The rows' neighbours among ``idx``, from the shared lists: their first columns,
        enough to hold about ``size`` + LISTED_EXTRA rows of the subset; any row of the
        subset not listed is at least the last column's distance away."""
        columns = min(
            self.index.shape[1], int(np.ceil((size + density.LISTED_EXTRA) / self.fraction))
        )
        position = np.full(len(self.Xs), -1, dtype=np.int64)
        position[idx] = np.arange(len(idx))
        listed = position[self.index[idx, :columns]]
        listed[listed == np.arange(len(idx))[:, None]] = -1  # the row itself
        distance = self.distance[idx, :columns]  # a copy (fancy indexing)
        distance[listed < 0] = np.inf
        return density.Neighbourhoods(listed, distance, self.distance[idx, columns - 1])


# --------------------------------------------------------------------------- sweep + fit


@dataclass(frozen=True, eq=False)
class Fitted:
    """One algorithm's answer on the data: its K sweep (an engine.SweepResult), the chosen
    K, the fitted pipeline and the per-K BIC of a mixture."""

    algorithm: str
    sweep: engine.SweepResult
    k: int
    pipeline: Pipeline
    rule: str
    bic_by_k: tuple[float, ...] = ()
    covariance_type: str = ""  # a mixture's, chosen by BIC or set by the user


def sweep_and_fit(
    algorithm: str,
    X_model: np.ndarray,
    X_raw: np.ndarray,
    *,
    k_values: Sequence[int],
    k_fixed: int | None,
    log_mask: np.ndarray,
    min_share: float,
    min_size: int,
    random_state: int | None = 0,
    progress: engine.ProgressCallback | None = None,
    covariance: str = COVARIANCE_AUTO,
    encoder: OneHotColumns | None = None,
) -> Fitted:
    """Sweep K (where the algorithm has one), choose it and fit the final pipeline.

    ``X_model`` is the rows on the model's scale before standardising (log applied),
    ``X_raw`` the same rows raw: the pipeline is fitted on raw values like K-Means'."""
    report = progress or engine._no_progress
    if algorithm == KMEANS:
        sweep = engine.sweep(
            X_model,
            k_values=k_values,
            random_state=random_state,
            progress=report,
            keep_labels=False,
            encoder=encoder,
        )
        k = k_fixed or engine.choose_k(sweep, min_share=min_share)
        pipeline = engine.fit(
            X_raw, k=k, random_state=random_state, log_columns=log_mask, encoder=encoder
        )
        return Fitted(KMEANS, sweep, k, pipeline, engine.K_RULE)
    Xs = engine.model_scaler(encoder).fit_transform(_encoded(X_model, encoder))
    # Every segmenter's pipeline: the same transforms as K-Means' (engine.model_steps).
    steps = (log_mask, encoder)
    if algorithm == GMM:
        return _gmm(Xs, X_raw, k_values, k_fixed, steps, random_state, report, covariance)
    if algorithm == WARD:
        return _ward(Xs, X_raw, k_values, k_fixed, steps, min_share, random_state, report)
    if algorithm == HDBSCAN_KEY:
        return _density(Xs, X_raw, steps, min_share, min_size, random_state, report)
    raise ValueError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")


def _encoded(X: np.ndarray, encoder: OneHotColumns | None) -> np.ndarray:
    return X if encoder is None else encoder.transform(X)


def _pipeline(steps: tuple, segmenter: BaseEstimator, X_raw: np.ndarray) -> Pipeline:
    """``steps``: (log mask, one-hot encoder or None), as engine.model_steps takes them."""
    return make_pipeline(*engine.model_steps(*steps), segmenter).fit(X_raw)


def _scaled_rows(steps: tuple, X_raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` of X_raw in the scaled space the pipeline will have (its scaler sees every
    row of X_raw)."""
    log_mask, encoder = steps
    expanded = _encoded(engine.log_transform(X_raw, log_mask), encoder)
    return engine.model_scaler(encoder).fit(expanded).transform(expanded[rows])


def _sweep_result(ks, inertia, silhouette, labels, n_rows, sil_rows, algorithm):
    return engine.SweepResult(
        k_values=tuple(ks),
        inertia=tuple(float(v) for v in inertia),
        silhouette=tuple(float(s) for s in silhouette),
        labels_by_k=None,
        silhouette_sample_size=sil_rows,
        sweep_sample_size=len(labels[0]) if labels else n_rows,
        algorithm=algorithm,
        n_rows=n_rows,
        smallest_share=tuple(
            float(np.bincount(lab[lab >= 0]).min() / len(lab)) if (lab >= 0).any() else 0.0
            for lab in labels
        ),
    )


def _silhouettes(Xs: np.ndarray, labels_list: list[np.ndarray], random_state) -> tuple:
    """Exact silhouette per labelling (noise left out), sampled like the engine's above
    SILHOUETTE_EXACT_MAX rows; returns (values, rows used)."""
    rows = _sample(len(Xs), engine.SILHOUETTE_EXACT_MAX, random_state)
    if all((labels >= 0).all() and len(np.unique(labels)) > 1 for labels in labels_list):
        # No noise: every labelling from one pass over the distances (the engine's way).
        compact = [np.unique(labels[rows], return_inverse=True)[1] for labels in labels_list]
        return [float(v) for v in engine.silhouette_all_k(Xs[rows], compact)], len(rows)
    values = []
    for labels in labels_list:
        kept = rows[labels[rows] >= 0]
        lab = labels[kept]
        if len(np.unique(lab)) < 2:
            values.append(float("nan"))
            continue
        _, lab = np.unique(lab, return_inverse=True)
        values.append(float(engine.silhouette_all_k(Xs[kept], [lab])[0]))
    return values, len(rows)


def covariance_types(covariance: str) -> tuple[str, ...]:
    """The covariance types a mixture tries: all of them ("auto") or the one set."""
    if covariance == COVARIANCE_AUTO:
        return tuple(COVARIANCE_TYPES)
    if covariance not in COVARIANCE_TYPES:
        choices = ", ".join((COVARIANCE_AUTO, *COVARIANCE_TYPES))
        raise ValueError(f"the covariance type must be one of {choices}")
    return (covariance,)


def _gmm(Xs, X_raw, k_values, k_fixed, steps, random_state, report, covariance) -> Fitted:
    ks = tuple(k_values)
    types = covariance_types(covariance)
    rows = _sample(len(Xs), GMM_SAMPLE_MAX, random_state)
    fits: dict[str, list[GaussianMixture]] = {}
    starts: dict = {}  # this sweep's k-means starts, shared by the covariance types
    for t, kind in enumerate(types):
        fits[kind] = []
        for i, k in enumerate(ks):
            report(
                0.8 * (t * len(ks) + i) / (len(ks) * len(types)), f"Trying a {kind} mixture of {k}"
            )
            fits[kind].append(_mixture(k, kind, random_state, starts).fit(Xs[rows]))
            fits[kind][-1].starts = None
    bic = {kind: [float(m.bic(Xs[rows])) for m in models] for kind, models in fits.items()}
    # The covariance type of the lowest BIC over every K tried (or at the fixed K).
    at = [ks.index(k_fixed)] if k_fixed in ks else range(len(ks))
    kind = min(types, key=lambda c: min(bic[c][i] for i in at))
    models = fits[kind]
    labels = [model.predict(Xs[rows]) for model in models]
    inertia = [_within_ss(Xs[rows], lab, m.means_) for lab, m in zip(labels, models)]
    report(0.8, "Silhouette")
    silhouette, sil_rows = _silhouettes(Xs[rows], labels, random_state)
    k = k_fixed or ks[int(np.argmin(bic[kind]))]
    segmenter = MixtureSegments(k, kind, random_state)
    sweep = _sweep_result(ks, inertia, silhouette, labels, len(Xs), sil_rows, GMM)
    pipeline = _pipeline(steps, segmenter, X_raw)
    return Fitted(GMM, sweep, k, pipeline, GMM_RULE, tuple(bic[kind]), kind)


def _ward(Xs, X_raw, k_values, k_fixed, steps, min_share, random_state, report) -> Fitted:
    ks = tuple(k_values)
    rows = _sample(len(Xs), WARD_SAMPLE_MAX, random_state)
    report(0.1, "Building the Ward tree")
    tree = ward_tree(Xs[rows])
    labels = [fcluster(tree, k, criterion="maxclust") - 1 for k in ks]
    inertia = [_within_ss(Xs[rows], lab, _centres(Xs[rows], lab, k)) for lab, k in zip(labels, ks)]
    report(0.6, "Silhouette")
    silhouette, sil_rows = _silhouettes(Xs[rows], labels, random_state)
    sweep = _sweep_result(ks, inertia, silhouette, labels, len(Xs), sil_rows, WARD)
    k = k_fixed or engine.choose_k(sweep, min_share=min_share)
    chosen = labels[ks.index(k)]
    # Centres in the pipeline's own scaled space (its scaler sees the same rows).
    segmenter = CentreSegments(_centres(_scaled_rows(steps, X_raw, rows), chosen, k))
    return Fitted(WARD, sweep, k, _pipeline(steps, segmenter, X_raw), WARD_RULE)


def _density(Xs, X_raw, steps, min_share, min_size, random_state, report) -> Fitted:
    min_cluster = max(min_size, int(np.ceil(min_share * min(len(Xs), DENSITY_SAMPLE_MAX))))
    report(0.1, "Finding dense groups")
    segmenter = DensitySegments(min_cluster, random_state)
    pipeline = _pipeline(steps, segmenter, X_raw)
    labels = pipeline[-1].labels_
    k = int(labels.max()) + 1
    report(0.7, "Silhouette")
    silhouette, sil_rows = _silhouettes(Xs, [labels], random_state)
    sweep = _sweep_result(
        (k,), [pipeline[-1].inertia_], silhouette, [labels], len(Xs), sil_rows, HDBSCAN_KEY
    )
    return Fitted(HDBSCAN_KEY, sweep, k, pipeline, HDBSCAN_RULE)


# --------------------------------------------------------------------------- consensus

ENSEMBLE = "ensemble"
ENSEMBLE_LABEL = "Consensus ensemble"
# Customers the co-association matrix covers (n x n floats: 2,000 -> 32 MB).
ENSEMBLE_SAMPLE_MAX = 2_000
# Resampled refits per base algorithm behind the co-association.
ENSEMBLE_REFITS = 4
ENSEMBLE_BASES = (KMEANS, GMM, WARD)
ENSEMBLE_RULE = (
    "A consensus of K-Means, the Gaussian mixture and Ward: each refitted 4 times on random "
    "80 % samples of at most 2,000 customers; two customers are alike by the share of refits "
    "that put them together; average linkage on that share, cut at the number of segments "
    "with the highest silhouette; every customer then goes to the nearest consensus centre. "
    "It is kept only when the recommendation rule prefers it to each of its parts."
)


def co_association(
    Xs: np.ndarray, k: int, *, random_state: int | None = 0, refits: int = ENSEMBLE_REFITS
) -> np.ndarray:
    """(n, n) share of the base refits that put two rows in one segment, among the refits
    whose sample held both (the diagonal is 1)."""
    n = len(Xs)
    rng = np.random.default_rng(random_state)
    together, both = np.zeros((n, n)), np.zeros((n, n))
    for algorithm in ENSEMBLE_BASES:
        for seed in rng.integers(0, 2**31 - 1, size=refits):
            idx = rng.choice(n, max(k + 1, round(STABILITY_FRACTION * n)), replace=False)
            labels = _refit_labels(algorithm, Xs[idx], k, int(seed), 10, GMM_COVARIANCE)
            onehot = np.zeros((len(idx), int(labels.max()) + 1))
            onehot[np.arange(len(idx)), labels] = 1.0
            together[np.ix_(idx, idx)] += onehot @ onehot.T
            both[np.ix_(idx, idx)] += 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(both > 0, together / np.maximum(both, 1), 0.0)
    np.fill_diagonal(shares, 1.0)
    return shares


def _consensus_cuts(Xs: np.ndarray, k: int, ks: Sequence[int], random_state) -> list:
    """Average-linkage cuts of 1 - co-association at each K in ``ks``."""
    from scipy.spatial.distance import squareform

    distance = 1.0 - co_association(Xs, k, random_state=random_state)
    tree = linkage(squareform(distance, checks=False), method="average")
    return [fcluster(tree, kk, criterion="maxclust") - 1 for kk in ks]


def consensus_fit(
    X_model: np.ndarray,
    X_raw: np.ndarray,
    *,
    k_values: Sequence[int],
    k_guess: int,
    log_mask: np.ndarray,
    min_share: float,
    random_state: int | None = 0,
    encoder: OneHotColumns | None = None,
) -> Fitted:
    """The consensus segmentation (ENSEMBLE_RULE); ``k_guess`` is the K the base refits
    use (the parts' usual choice)."""
    Xs = engine.model_scaler(encoder).fit_transform(_encoded(X_model, encoder))
    steps = (log_mask, encoder)
    rows = _sample(len(Xs), ENSEMBLE_SAMPLE_MAX, random_state)
    ks = tuple(kk for kk in k_values if kk < len(rows))
    cuts = _consensus_cuts(Xs[rows], k_guess, ks, random_state)
    cuts = [np.unique(cut, return_inverse=True)[1] for cut in cuts]
    inertia = [_within_ss(Xs[rows], c, _centres(Xs[rows], c, int(c.max()) + 1)) for c in cuts]
    silhouette, sil_rows = _silhouettes(Xs[rows], cuts, random_state)
    sweep = _sweep_result(ks, inertia, silhouette, cuts, len(Xs), sil_rows, ENSEMBLE)
    k = engine.choose_k(sweep, min_share=min_share)
    chosen = cuts[ks.index(k)]
    segmenter = CentreSegments(_centres(_scaled_rows(steps, X_raw, rows), chosen, k))
    return Fitted(ENSEMBLE, sweep, k, _pipeline(steps, segmenter, X_raw), ENSEMBLE_RULE)


# Every algorithm's name as shown, the consensus included (it is only made by a compare).
LABELS: dict[str, str] = {**ALGORITHMS, ENSEMBLE: ENSEMBLE_LABEL}
# How each algorithm chooses its number of segments, as the run page says it.
K_RULES: dict[str, str] = {
    KMEANS: engine.K_RULE,
    GMM: GMM_RULE,
    HDBSCAN_KEY: HDBSCAN_RULE,
    WARD: WARD_RULE,
    ENSEMBLE: ENSEMBLE_RULE,
}


def consensus_kept(parts: Sequence[CandidateScore], consensus: CandidateScore) -> bool:
    """Whether the recommendation rule prefers the consensus to every one of its parts."""
    return all(recommend([part, consensus]) == consensus.algorithm for part in parts)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Quality:
    """How well one segmentation separates the customers (noise left out)."""

    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    noise_share: float


def quality(
    Xs: np.ndarray,
    labels: np.ndarray,
    random_state: int | None = 0,
    *,
    silhouette: float | None = None,
) -> Quality:
    """Silhouette (exact, sampled above SILHOUETTE_EXACT_MAX like the engine's; pass one
    already computed on these labels to save the pass), Calinski-Harabasz and
    Davies-Bouldin on the customers in a segment."""
    labels = np.asarray(labels)
    kept = labels >= 0
    if silhouette is None:
        silhouette = _silhouettes(Xs, [labels], random_state)[0][0]
    if len(np.unique(labels[kept])) < 2:
        return Quality(silhouette, float("nan"), float("nan"), float(1 - kept.mean()))
    return Quality(
        silhouette,
        float(calinski_harabasz_score(Xs[kept], labels[kept])),
        float(davies_bouldin_score(Xs[kept], labels[kept])),
        float(1 - kept.mean()),
    )


# --------------------------------------------------------------------------- stability


@dataclass(frozen=True)
class Stability:
    """Agreement of resampled refits with the run's labels: the mean and standard
    deviation of the adjusted Rand index over the refits, and per segment the mean share
    of its member pairs that a refit keeps together."""

    mean: float
    spread: float
    refits: int
    sample_size: int
    by_segment: tuple[float, ...]


def _refit_labels(
    algorithm: str, Xs: np.ndarray, k: int, seed: int, min_size: int, covariance: str
):
    if algorithm == GMM:
        return _mixture(k, covariance, seed).fit(Xs).predict(Xs)
    if algorithm == WARD:
        return fcluster(ward_tree(Xs), k, criterion="maxclust") - 1
    if algorithm == HDBSCAN_KEY:
        return _hdbscan_labels(Xs, min_size)
    if algorithm == ENSEMBLE:
        return _consensus_refit(Xs, k, seed)
    return KMeans(k, n_init=engine.STABILITY_N_INIT, random_state=seed).fit(Xs).labels_


def _consensus_refit(Xs: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The consensus rebuilt on these rows (its own sample), everyone to the nearest centre."""
    rows = _sample(len(Xs), ENSEMBLE_SAMPLE_MAX // 2, seed)
    cut = _consensus_cuts(Xs[rows], k, (k,), seed)[0]
    cut = np.unique(cut, return_inverse=True)[1]
    centres = _centres(Xs[rows], cut, int(cut.max()) + 1)
    return cdist(Xs, centres, "sqeuclidean").argmin(axis=1)


def _pairs_kept_together(reference: np.ndarray, refit: np.ndarray, k: int) -> np.ndarray:
    """Per reference segment: the share of its member pairs that share a refit segment
    (noise in the refit never keeps a pair together). NaN for a segment under 2 members."""
    shares = np.full(k, np.nan)
    for c in range(k):
        members = refit[reference == c]
        n = len(members)
        if n < 2:
            continue
        counts = np.bincount(members[members >= 0]) if (members >= 0).any() else np.zeros(1)
        shares[c] = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    return shares


def stability(
    algorithm: str,
    Xs: np.ndarray,
    labels: np.ndarray,
    *,
    k: int,
    min_size: int = 10,
    refits: int = STABILITY_REFITS,
    fraction: float = STABILITY_FRACTION,
    sample_max: int = STABILITY_SAMPLE_MAX,
    random_state: int | None = 0,
    covariance_type: str = GMM_COVARIANCE,
    neighbour_search=None,
) -> Stability:
    """Refit the same algorithm (same K, fresh seeds) ``refits`` times, each on a random
    ``fraction`` of at most ``sample_max`` scaled rows, and compare with the run's labels
    (NOISE counts as a group of its own in the Rand index). ``min_size``: HDBSCAN's
    smallest group in the fit; ``neighbour_search``: its fit's neighbour search
    (DensitySegments.neighbour_search_), reused when the refits sample the same rows."""
    rng = np.random.default_rng(random_state)
    rows = rng.choice(len(Xs), sample_max, replace=False) if len(Xs) > sample_max else None
    Xw, lw = (Xs, labels) if rows is None else (Xs[rows], labels[rows])
    size = max(k + 1, round(fraction * len(Xw)))
    # HDBSCAN's smallest group, in proportion to the rows it was fitted on (``min_size``
    # is the fitted model's): the refits look for groups of the same share.
    refit_size = max(5, round(min_size * min(size, len(Xw)) / min(len(Xs), DENSITY_SAMPLE_MAX)))
    scores, together = [], []
    shared = None
    if algorithm == HDBSCAN_KEY:
        search = neighbour_search if rows is None else None
        shared = SharedNeighbours(
            Xw, min_samples=max(refit_size, 5), fraction=fraction, search=search
        )
    for seed in rng.integers(0, 2**31 - 1, size=refits):
        idx = rng.choice(len(Xw), size=min(size, len(Xw)), replace=False)
        if shared is not None:
            refit = shared.labels(idx, refit_size)
        else:
            refit = _refit_labels(algorithm, Xw[idx], k, int(seed), refit_size, covariance_type)
        scores.append(adjusted_rand_score(lw[idx], refit))
        together.append(_pairs_kept_together(lw[idx], refit, k))
    with np.errstate(all="ignore"):
        by_segment = np.nanmean(np.array(together), axis=0) if together else np.full(k, np.nan)
    return Stability(
        float(np.mean(scores)),
        float(np.std(scores)),
        refits,
        len(Xw),
        tuple(float(v) for v in by_segment),
    )


# --------------------------------------------------------------------------- choice


@dataclass(frozen=True)
class CandidateScore:
    algorithm: str
    silhouette: float  # of the customers in a segment
    stability: float
    noise_share: float = 0.0  # customers in no segment (HDBSCAN's Unsegmented)

    @property
    def silhouette_all(self) -> float:
        """The silhouette over every customer, an Unsegmented one counting 0: leaving the
        hard cases out must not win the comparison by itself."""
        return self.silhouette * (1.0 - self.noise_share)


def recommend(candidates: Sequence[CandidateScore]) -> str:
    """The algorithm RECOMMENDATION_RULE picks: highest silhouette (Unsegmented counting 0)
    among the stable ones, else the most stable."""

    def silhouette(c: CandidateScore) -> float:
        return -np.inf if np.isnan(c.silhouette) else c.silhouette_all

    stable = [c for c in candidates if c.stability >= RECOMMEND_MIN_STABILITY]
    if stable:
        return max(stable, key=silhouette).algorithm
    return max(candidates, key=lambda c: c.stability).algorithm


# --------------------------------------------------------------------------- dendrogram


@dataclass(frozen=True)
class Merge:
    """Two nodes joined at ``height`` (Ward's distance); nodes 0..K-1 are the segments,
    K + i the node made by merge i."""

    left: int
    right: int
    height: float
    size: int


def segment_tree(centres: np.ndarray, sizes: Sequence[int]) -> list[Merge]:
    """Ward's merges of the segments themselves (their centres weighted by size): which
    segments join first. For a Ward run this is exactly the top of its tree (Ward's cost
    depends only on the groups' sizes and centres)."""
    nodes = {i: (np.asarray(c, float), int(s)) for i, (c, s) in enumerate(zip(centres, sizes))}
    merges, next_id = [], len(nodes)
    while len(nodes) > 1:
        keys = sorted(nodes)
        best = None
        for a_i, a in enumerate(keys):
            for b in keys[a_i + 1 :]:
                (ca, na), (cb, nb) = nodes[a], nodes[b]
                cost = np.sqrt(2 * na * nb / max(na + nb, 1)) * np.linalg.norm(ca - cb)
                if best is None or cost < best[0]:
                    best = (cost, a, b)
        cost, a, b = best
        (ca, na), (cb, nb) = nodes.pop(a), nodes.pop(b)
        total = na + nb
        nodes[next_id] = ((ca * na + cb * nb) / max(total, 1), total)
        merges.append(Merge(a, b, float(cost), total))
        next_id += 1
    return merges


@dataclass(frozen=True)
class TreeDrawing:
    """Lines and leaf positions of a dendrogram in a width x height box."""

    width: int
    height: int
    lines: tuple[tuple[float, float, float, float], ...]
    leaves: tuple[tuple[int, float], ...]  # (segment index, x), left to right


def draw_tree(
    merges: Sequence[Merge], n_leaves: int, *, width: int = 560, height: int = 220, margin: int = 12
) -> TreeDrawing:
    """Coordinates for an SVG dendrogram: leaves along the bottom in tree order, each
    merge a bracket at a height proportional to its Ward distance."""
    order = _leaf_order(merges, n_leaves)
    step = (width - 2 * margin) / max(n_leaves, 1)
    x = {leaf: margin + step * (i + 0.5) for i, leaf in enumerate(order)}
    top = max((m.height for m in merges), default=1.0) or 1.0
    bottom = height - margin
    y = dict.fromkeys(range(n_leaves), float(bottom))

    def level(h: float) -> float:
        return bottom - (bottom - margin) * h / top

    lines: list[tuple[float, float, float, float]] = []
    for i, m in enumerate(merges):
        node, h = n_leaves + i, level(m.height)
        lines += [
            (x[m.left], y[m.left], x[m.left], h),
            (x[m.right], y[m.right], x[m.right], h),
            (x[m.left], h, x[m.right], h),
        ]
        x[node], y[node] = (x[m.left] + x[m.right]) / 2, h
    rounded = tuple(tuple(round(v, 1) for v in line) for line in lines)
    return TreeDrawing(width, height, rounded, tuple((leaf, round(x[leaf], 1)) for leaf in order))


def _leaf_order(merges: Sequence[Merge], n_leaves: int) -> list[int]:
    if not merges:
        return list(range(n_leaves))
    children = {n_leaves + i: (m.left, m.right) for i, m in enumerate(merges)}

    def walk(node: int) -> list[int]:
        if node < n_leaves:
            return [node]
        left, right = children[node]
        return walk(left) + walk(right)

    return walk(n_leaves + len(merges) - 1)


ProgressCallback = Callable[[float, str], None]
