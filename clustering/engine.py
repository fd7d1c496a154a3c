"""Pure clustering engine for customer segmentation (numpy/pandas/scipy/scikit-learn only).

Nothing here imports Django: callers hand in plain arrays (rows = customers, columns = the
features of the run, in the order the caller chose) and get plain Python/numpy results back.

Pipeline of a run: ``sweep`` tries every K, ``choose_k`` picks one, ``fit`` trains the final
model, ``stability`` checks it, ``name_clusters`` turns centroids into personas, ``score`` /
``predict_proba`` assign customers with a confidence, ``explain`` compares a customer with
the segment centre and ``match_centroids`` carries segment identities across retrains.

Sampling (so that large runs stay fast and memory-bounded):

* The silhouette is exact (same value as ``sklearn.metrics.silhouette_score``) up to
  ``SILHOUETTE_EXACT_MAX`` rows. Above that it is computed on a random sample of that many
  rows, drawn exactly as ``silhouette_score(..., sample_size=..., random_state=...)`` does,
  and ``SweepResult.silhouette_sample_size`` reports the sample size.
* Above ``LARGE_DATA_THRESHOLD`` rows the K sweep runs MiniBatchKMeans on a random sample of
  ``SWEEP_SAMPLE_SIZE`` rows (``SweepResult.algorithm`` / ``sweep_sample_size`` say so) and
  ``fit`` uses MiniBatchKMeans on all rows.
* ``stability`` works on at most ``STABILITY_SAMPLE_MAX`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.distance import cdist
from scipy.stats import chi2
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from clustering.bands import CONFIDENCE_BANDS, SILHOUETTE_BANDS, band_for
from clustering.encoding import MixedScaler, OneHotColumns

SILHOUETTE_EXACT_MAX = 20_000
LARGE_DATA_THRESHOLD = 100_000
SWEEP_SAMPLE_SIZE = 50_000
MINIBATCH_SIZE = 4096
# K-Means restarts (k-means++ seeds) per K. Measured with bench/n_init_check.py against the
# best of 200 other seeds on the test-shaped data sets (wholesale-like 440 rows, mall 200,
# demo 5,000; K 2-10): n_init=4 lost up to 0.029 silhouette (demo K=8, inertia +3.3 %),
# n_init=10 at most 0.007 and 1.4 % inertia; more restarts (20, 30) gained no more than
# that on the skewed wholesale-like file, whose optima are many and nearly equal.
N_INIT = 10
# MiniBatchKMeans (above LARGE_DATA_THRESHOLD) compares its restarts on a small init
# sample only; more of them cost time on a million rows without a measured gain.
MINIBATCH_N_INIT = 4
STABILITY_SAMPLE_MAX = 20_000
# Refits in `stability` are deliberately cheap: few restarts, fresh random seeds.
STABILITY_N_INIT = 2
# One distance chunk (rows x n float64) stays below this many bytes (~64 MiB).
CHUNK_BYTES = 64 * 2**20
# Rows scored at a time, so a million-row `score` never holds big temporaries.
SCORE_CHUNK_ROWS = 65_536
# Keeps the softmax defined when every row sits exactly on its centroid.
MIN_VARIANCE = 1e-12
# A customer farther from the nearest segment centre than this share of the customers the
# model was trained on is called unusual: the segment is then only the nearest guess.
UNUSUAL_QUANTILE = 0.999

ALGORITHM_KMEANS = "kmeans"
ALGORITHM_MINIBATCH = "minibatch_kmeans"

K_RULE = (
    "We try a range of segment counts (2 to 10 unless you choose otherwise) and keep the one "
    "with the highest silhouette "
    "score (how much closer customers are to their own segment than to the next one); "
    "on a tie the smaller number wins."
)
CONFIDENCE_FORMULA = (
    "Each segment is pictured as a round cloud of customers around its centre, every cloud "
    "as wide as the typical spread of customers around their own centre and all equally "
    "likely. The confidence is the chance that the customer belongs to the assigned cloud "
    "rather than any other: close to 100 % near the centre of one segment, 50 % exactly "
    "halfway between two segments, and lower when several segments are equally close."
)

ProgressCallback = Callable[[float, str], None]


# --------------------------------------------------------------------------- validation


def validate_features(feature_names: Sequence[str]) -> tuple[str, ...]:
    """Return the feature names as a tuple; raise ValueError unless there are at least two,
    all distinct (any names: the feature catalogue decides what they are)."""
    names = tuple(str(name) for name in feature_names)
    if len(names) < 2:
        raise ValueError("a run needs at least two features")
    if len(set(names)) != len(names):
        raise ValueError("features must not repeat")
    return names


def _as_matrix(X: ArrayLike, feature_names: Sequence[str] | None = None) -> np.ndarray:
    """Float64 2-D view of X (no copy when it already is one), checked for NaN/inf."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)  # a single customer row
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError("X must be a non-empty 2-D array (rows = customers)")
    if feature_names is not None and arr.shape[1] != len(validate_features(feature_names)):
        raise ValueError("X has a different number of columns than feature_names")
    if not np.isfinite(arr).all():
        raise ValueError("X contains NaN or infinite values")
    return arr


def _check_k_values(k_values: Sequence[int], n_rows: int) -> tuple[int, ...]:
    """Sorted unique K values; silhouette needs 2 <= K <= n_rows - 1."""
    ks = tuple(sorted({int(k) for k in k_values}))
    if not ks:
        raise ValueError("k_values is empty")
    if ks[0] < 2 or ks[-1] > n_rows - 1:
        raise ValueError(f"K must be between 2 and {n_rows - 1} for {n_rows} rows")
    return ks


def _sample_indices(n_rows: int, max_rows: int, random_state: int | None) -> np.ndarray | None:
    """None (use every row) or the first max_rows of a seeded permutation; this is the
    same draw sklearn's ``silhouette_score(sample_size=..., random_state=...)`` makes."""
    if n_rows <= max_rows:
        return None
    return check_random_state(random_state).permutation(n_rows)[:max_rows]


def _row_slices(n_rows: int, chunk_rows: int) -> Iterator[slice]:
    for start in range(0, n_rows, chunk_rows):
        yield slice(start, min(start + chunk_rows, n_rows))


def _no_progress(fraction: float, step: str) -> None:
    """Default progress callback: ignore."""


# --------------------------------------------------------------------------- silhouette


def _stacked_onehot(
    labels_list: Sequence[np.ndarray],
) -> tuple[np.ndarray, list[int], list[np.ndarray]]:
    """One-hot matrices of every labelling side by side (n x sum K), their column offsets
    and cluster sizes, so one matrix product gives the per-cluster distance sums of all K."""
    sizes = [int(labels.max()) + 1 for labels in labels_list]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    onehot = np.zeros((len(labels_list[0]), offsets[-1]))
    rows = np.arange(len(labels_list[0]))
    for labels, offset in zip(labels_list, offsets, strict=False):
        onehot[rows, offset + labels] = 1.0
    counts = [
        np.bincount(lab, minlength=size) for lab, size in zip(labels_list, sizes, strict=True)
    ]
    return onehot, offsets, counts


def _chunk_silhouette(sums: np.ndarray, own: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """s(i) for a chunk of rows given their distance sums to every cluster (rows x K)."""
    rows = np.arange(len(own))
    own_counts = counts[own]
    # a(i): mean distance to the other members of its own cluster (itself contributes 0).
    a = sums[rows, own] / np.maximum(own_counts - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums / counts
        means[:, counts == 0] = np.inf  # cluster absent from a sample: never the nearest
        means[rows, own] = np.inf
        b = means.min(axis=1)
        s = (b - a) / np.maximum(a, b)
    s[own_counts == 1] = 0.0  # sklearn's convention for a point alone in its cluster
    return np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)


def silhouette_all_k(
    Xs: np.ndarray,
    labels_list: Sequence[np.ndarray],
    *,
    chunk_bytes: int = CHUNK_BYTES,
    on_chunk: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Exact mean silhouette of every labelling of the same rows, computing each pairwise
    distance once: row chunks of the distance matrix (never n x n) are multiplied by the
    stacked one-hot labels. Matches ``sklearn.metrics.silhouette_score`` per labelling."""
    n_rows = len(Xs)
    labels_list = [np.asarray(labels, dtype=np.intp) for labels in labels_list]
    onehot, offsets, counts = _stacked_onehot(labels_list)
    totals = np.zeros(len(labels_list))
    chunk_rows = min(n_rows, max(1, chunk_bytes // (8 * n_rows)))
    # One reused buffer: a fresh 64 MiB array per chunk costs page faults on every chunk.
    buffer = np.empty((chunk_rows, n_rows))
    for sl in _row_slices(n_rows, chunk_rows):
        dist = buffer[: sl.stop - sl.start]
        cdist(Xs[sl], Xs, out=dist)  # exact euclidean in one pass (no cancellation)
        sums = dist @ onehot
        for j, labels in enumerate(labels_list):
            block = sums[:, offsets[j] : offsets[j + 1]]
            totals[j] += _chunk_silhouette(block, labels[sl], counts[j]).sum()
        if on_chunk is not None:
            on_chunk(sl.stop / n_rows)
    return totals / n_rows


# --------------------------------------------------------------------------- transforms

# A money-like column this skewed (sample skewness) is log-transformed for training.
LOG_SKEW_THRESHOLD = 1.0
# A customer beyond this robust z (median and MAD) on any feature does not pull a centre.
OUTLIER_ROBUST_Z = 6.0
# MAD * this = the standard deviation of a normal distribution.
MAD_TO_SD = 1.4826
# Below this many customers the median and MAD are too rough to call anyone an outlier.
OUTLIER_MIN_ROWS = 50
# More than this share beyond the threshold is a group of its own, not stray outliers.
OUTLIER_MAX_SHARE = 0.05


class LogColumns(BaseEstimator, TransformerMixin):
    """log(1 + x) on the masked columns, the others as they are: the first step of every
    pipeline, so a prediction reads raw values exactly as training did."""

    def __init__(self, mask: Sequence[bool] = ()) -> None:
        self.mask = mask

    def fit(self, X, y=None) -> LogColumns:
        self.mask_ = np.asarray(self.mask, dtype=bool)
        return self

    def transform(self, X) -> np.ndarray:
        return log_transform(X, self.mask_)

    def inverse_transform(self, X) -> np.ndarray:
        out = np.array(X, dtype=np.float64, copy=True)
        if self.mask_.any():
            out[:, self.mask_] = np.expm1(out[:, self.mask_])
        return out


def log_transform(X: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """A copy of X with log(1 + x) applied to the masked columns (which must be >= 0)."""
    out = np.array(X, dtype=np.float64, copy=True)
    mask = np.asarray(mask, dtype=bool)
    if mask.size and mask.any():
        out[:, mask] = np.log1p(np.maximum(out[:, mask], 0.0))
    return out


def skewed_columns(X: ArrayLike, allowed: Sequence[bool]) -> np.ndarray:
    """Columns worth a log transform: allowed (money, counts), never negative, and heavily
    right-skewed (sample skewness above LOG_SKEW_THRESHOLD)."""
    X = _as_matrix(X)
    mask = np.zeros(X.shape[1], dtype=bool)
    for column, ok in enumerate(allowed):
        values = X[:, column]
        if ok and values.min() >= 0 and _skewness(values) > LOG_SKEW_THRESHOLD:
            mask[column] = True
    return mask


def _skewness(values: np.ndarray) -> float:
    centred = values - values.mean()
    sd = np.sqrt((centred**2).mean())
    return float((centred**3).mean() / sd**3) if sd > 0 else 0.0


def robust_outliers(X: ArrayLike, *, threshold: float = OUTLIER_ROBUST_Z) -> np.ndarray:
    """Rows beyond ``threshold`` robust z on any column: |x - median| / (MAD * 1.4826);
    none in small data or when so many are beyond it that they form a group of their own.

    A column whose MAD is 0 (most values equal) falls back to its standard deviation, so
    a column of mostly zeros does not make every non-zero customer an outlier."""
    X = _as_matrix(X)
    median = np.median(X, axis=0)
    spread = np.median(np.abs(X - median), axis=0) * MAD_TO_SD
    flat = spread <= MIN_VARIANCE
    spread[flat] = X[:, flat].std(axis=0)
    spread[spread <= MIN_VARIANCE] = np.inf  # a constant column flags nobody
    flagged = (np.abs(X - median) / spread > threshold).any(axis=1)
    if len(X) < OUTLIER_MIN_ROWS or flagged.mean() > OUTLIER_MAX_SHARE:
        return np.zeros(len(X), dtype=bool)
    return flagged


# --------------------------------------------------------------------------- sweep / fit


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Inertia and silhouette per K. In the large-data path both come from the sweep
    sample (``sweep_sample_size`` rows); labels_by_k holds labels of the swept rows."""

    k_values: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    labels_by_k: dict[int, np.ndarray] | None
    silhouette_sample_size: int
    sweep_sample_size: int
    algorithm: str
    n_rows: int
    # The smallest segment's share of the swept rows, per K.
    smallest_share: tuple[float, ...] = ()


def _make_kmeans(
    k: int, algorithm: str, random_state: int | None, n_init: int
) -> KMeans | MiniBatchKMeans:
    """The estimator for one K; identical settings in sweep and fit, so same labels."""
    if algorithm == ALGORITHM_MINIBATCH:
        return MiniBatchKMeans(
            n_clusters=k,
            n_init=MINIBATCH_N_INIT,
            random_state=random_state,
            batch_size=MINIBATCH_SIZE,
        )
    return KMeans(n_clusters=k, n_init=n_init, random_state=random_state)


def _fit_all_k(
    Xs: np.ndarray,
    ks: tuple[int, ...],
    algorithm: str,
    seeds: tuple[int | None, int],
    report: Callable[[float, str], None],
) -> tuple[list[np.ndarray], list[float]]:
    """Fit one model per K on the scaled rows; returns labels and inertia per K."""
    random_state, n_init = seeds
    labels, inertia = [], []
    for i, k in enumerate(ks):
        report(i / len(ks), f"Trying {k} segments")
        model = _make_kmeans(k, algorithm, random_state, n_init).fit(Xs)
        labels.append(model.labels_.astype(np.intp))
        inertia.append(float(model.inertia_))
    return labels, inertia


def _sweep_data(
    X: np.ndarray,
    large_data_threshold: int,
    sample_size: int,
    random_state: int | None,
    encoder: OneHotColumns | None = None,
) -> tuple[np.ndarray, str]:
    """Scaled rows to sweep on, and the algorithm. The scaler always sees all rows (it is
    cheap), so the sample lives in the same standardised space as the final model."""
    if encoder is not None:
        X = encoder.transform(X)
    scaler = model_scaler(encoder).fit(X)
    if len(X) <= large_data_threshold:
        return scaler.transform(X), ALGORITHM_KMEANS
    rows = _sample_indices(len(X), sample_size, random_state)
    sample = X if rows is None else X[rows]  # None: the sample size covers every row
    return scaler.transform(sample), ALGORITHM_MINIBATCH


def sweep(
    X: ArrayLike,
    *,
    k_values: Sequence[int] = range(2, 11),
    random_state: int | None = 0,
    n_init: int = N_INIT,
    progress: ProgressCallback | None = None,
    feature_names: Sequence[str] | None = None,
    silhouette_exact_max: int = SILHOUETTE_EXACT_MAX,
    large_data_threshold: int = LARGE_DATA_THRESHOLD,
    sweep_sample_size: int = SWEEP_SAMPLE_SIZE,
    keep_labels: bool = True,
    encoder: OneHotColumns | None = None,
) -> SweepResult:
    """Standardise X, fit (MiniBatch)KMeans for every K and record inertia and silhouette.

    ``progress(fraction, step)`` is called along the way. Thresholds are keywords so tests
    can exercise the sampled paths on small data (see the module docstring)."""
    X = _as_matrix(X, feature_names)
    report = progress or _no_progress
    report(0.0, "Standardising features")
    Xs, algorithm = _sweep_data(X, large_data_threshold, sweep_sample_size, random_state, encoder)
    ks = _check_k_values(k_values, len(Xs))
    labels, inertia = _fit_all_k(Xs, ks, algorithm, (random_state, n_init), _scaled(report, 0.7))
    rows = _sample_indices(len(Xs), silhouette_exact_max, random_state)
    sil_X, sil_labels = (Xs, labels) if rows is None else (Xs[rows], [lab[rows] for lab in labels])
    on_chunk = _scaled(report, 0.3, 0.7)
    silhouette = silhouette_all_k(sil_X, sil_labels, on_chunk=lambda f: on_chunk(f, "Silhouette"))
    report(1.0, "Done")
    return SweepResult(
        k_values=ks,
        inertia=tuple(inertia),
        silhouette=tuple(float(s) for s in silhouette),
        labels_by_k=dict(zip(ks, labels, strict=True)) if keep_labels else None,
        silhouette_sample_size=len(sil_X),
        sweep_sample_size=len(Xs),
        algorithm=algorithm,
        n_rows=len(X),
        smallest_share=tuple(float(np.bincount(lab).min() / len(lab)) for lab in labels),
    )


def _scaled(report: ProgressCallback, share: float, start: float = 0.0) -> ProgressCallback:
    """Map a sub-task's 0..1 progress onto [start, start + share] of the whole sweep."""
    return lambda fraction, step: report(start + share * fraction, step)


def choose_k(result: SweepResult, *, min_share: float = 0.0) -> int:
    """The K with the highest silhouette among those whose every segment holds at least
    ``min_share`` of the customers; ties go to the smaller K (see ``K_RULE``). When no K
    qualifies, the K whose smallest segment is largest."""
    best_k, best_s = None, -np.inf
    shares = result.smallest_share or (1.0,) * len(result.k_values)
    for k, s, share in sorted(zip(result.k_values, result.silhouette, shares, strict=True)):
        if share >= min_share and not np.isnan(s) and s > best_s:  # '>' keeps the smaller K
            best_k, best_s = k, s
    if best_k is None:
        if not result.k_values:
            raise ValueError("no K has a silhouette score")
        return result.k_values[int(np.argmax(shares))]
    return best_k


def fit(
    X: ArrayLike,
    *,
    k: int,
    random_state: int | None = 0,
    n_init: int = N_INIT,
    feature_names: Sequence[str] | None = None,
    large_data_threshold: int = LARGE_DATA_THRESHOLD,
    log_columns: Sequence[bool] | None = None,
    encoder: OneHotColumns | None = None,
) -> Pipeline:
    """LogColumns + StandardScaler + KMeans (MiniBatchKMeans above the threshold) fitted on
    ALL rows of X (raw values). Same data and seed give the same labels."""
    X = _as_matrix(X, feature_names)
    if not 2 <= k <= len(X):
        raise ValueError(f"k must be between 2 and {len(X)}")
    mask = np.zeros(X.shape[1], bool) if log_columns is None else np.asarray(log_columns, bool)
    algorithm = ALGORITHM_MINIBATCH if len(X) > large_data_threshold else ALGORITHM_KMEANS
    kmeans = _make_kmeans(k, algorithm, random_state, n_init)
    return make_pipeline(*model_steps(mask, encoder), kmeans).fit(X)


def model_scaler(encoder: OneHotColumns | None) -> StandardScaler:
    """StandardScaler, or with categorical features the scaler that weighs each one as a
    single numeric feature (clustering.encoding)."""
    return StandardScaler() if encoder is None else MixedScaler(encoder.groups_)


def model_steps(log_mask: Sequence[bool], encoder: OneHotColumns | None) -> list:
    """The steps before the segmenter: LogColumns, the one-hot step (only with categorical
    features, so numeric runs keep their saved shape) and the scaler."""
    steps = [LogColumns(log_mask)]
    if encoder is not None:
        steps.append(clone(encoder))  # each saved pipeline owns its step
    return [*steps, model_scaler(encoder)]


def scaler_of(pipeline: Pipeline) -> StandardScaler:
    """The pipeline's scaler (the step before the clustering)."""
    return pipeline[-2]


def encoder_of(pipeline: Pipeline) -> OneHotColumns | None:
    """The pipeline's one-hot step (between LogColumns and the scaler) when the run has a
    categorical feature; None otherwise."""
    step = pipeline[-3] if len(pipeline) > 3 else None
    return step if isinstance(step, OneHotColumns) else None


def expand(pipeline: Pipeline, X: ArrayLike) -> np.ndarray:
    """Raw rows on the model's columns before standardising (log, then one-hot)."""
    Z = log_transform(X, log_mask_of(pipeline))
    encoder = encoder_of(pipeline)
    return Z if encoder is None else encoder.transform(Z)


def centroids_by_feature_sd(pipeline: Pipeline) -> np.ndarray:
    """Centroids in sd with one column per feature: a categorical feature reads 0 (it has
    no direction; its segments differ by their category mix, shown on the cards)."""
    encoder = encoder_of(pipeline)
    centres = centroids_sd(pipeline)
    return centres if encoder is None else encoder.collapse(centres, fill=0.0)


def log_mask_of(pipeline: Pipeline) -> np.ndarray:
    """Which columns the pipeline log-transforms (none for a model saved before transforms)."""
    n_features = scaler_of(pipeline).mean_.shape[0]
    if len(pipeline) > 2 and isinstance(pipeline[0], LogColumns):
        return pipeline[0].mask_
    return np.zeros(n_features, dtype=bool)


def to_model_space(pipeline: Pipeline, X: ArrayLike) -> np.ndarray:
    """Raw rows scaled as the model sees them (log where chosen, one-hot categories, then
    standardised)."""
    return scaler_of(pipeline).transform(expand(pipeline, X))


def centroids_sd(pipeline: Pipeline) -> np.ndarray:
    """Centroids in standard deviations from the population mean (the scaled space)."""
    return np.asarray(pipeline[-1].cluster_centers_)


def centroids_original(pipeline: Pipeline) -> np.ndarray:
    """Centroids in the original feature units (a log-transformed feature's centre is the
    geometric mean of its members, back in money)."""
    transformed = scaler_of(pipeline).inverse_transform(centroids_sd(pipeline))
    encoder = encoder_of(pipeline)
    if encoder is not None:  # a categorical feature's centre: its modal category's code
        transformed = encoder.collapse(transformed)
    mask = log_mask_of(pipeline)
    if mask.any():
        transformed[:, mask] = np.expm1(transformed[:, mask])
    return transformed


def within_variance(pipeline: Pipeline, n_rows: int) -> float:
    """Shared per-feature variance of the run in scaled space:
    inertia / (n_rows * n_features), the sigma2 used by ``predict_proba``."""
    model = pipeline[-1]
    n_features = model.cluster_centers_.shape[1]
    return max(float(model.inertia_) / (n_rows * n_features), MIN_VARIANCE)


# --------------------------------------------------------------------------- confidence


@dataclass(frozen=True, eq=False)
class Scores:
    """Per-row assignment: cluster index, its probability, runner-up and its probability."""

    cluster: np.ndarray
    confidence: np.ndarray
    runner_up: np.ndarray
    runner_up_probability: np.ndarray
    # Squared distance (sd) to the nearest centre; computed when training scores customers.
    nearest_d2: np.ndarray | None = None
    # True where a row is far from every centre (see UNUSUAL_QUANTILE); served scores only.
    unusual: np.ndarray | None = None


def _chunk_proba(pipeline: Pipeline, X: np.ndarray, sigma2: float) -> np.ndarray:
    """Softmax of -d^2 / (2 sigma2) over the centroids (equal-prior isotropic Gaussians)."""
    return _softmax(_chunk_d2(pipeline, X), sigma2)


def _chunk_d2(pipeline: Pipeline, X: np.ndarray) -> np.ndarray:
    return cdist(to_model_space(pipeline, X), centroids_sd(pipeline), "sqeuclidean")


def _nearest_two(d2: np.ndarray) -> np.ndarray:
    """Column indexes of the nearest and second-nearest centre of each row.

    Ranked by distance, not probability: far from every centre the probabilities all
    round to 0 but one, and the runner-up must still be the next closest segment. On
    ties the lower index wins, exactly like KMeans.predict's argmin.
    """
    return np.argsort(d2, axis=1, kind="stable")[:, :2]


def _softmax(d2: np.ndarray, sigma2: float) -> np.ndarray:
    logits = d2 * (-0.5 / max(sigma2, MIN_VARIANCE))
    # Subtracting the row maximum avoids exp() underflow to 0/0 far from every centroid.
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def predict_proba(pipeline: Pipeline, X: ArrayLike, *, sigma2: float) -> np.ndarray:
    """(n, K) posterior probability of each segment for each row (see CONFIDENCE_FORMULA)."""
    X = _as_matrix(X)
    out = np.empty((len(X), centroids_sd(pipeline).shape[0]))
    for sl in _row_slices(len(X), SCORE_CHUNK_ROWS):
        out[sl] = _chunk_proba(pipeline, X[sl], sigma2)
    return out


def score(
    pipeline: Pipeline, X: ArrayLike, *, sigma2: float, placed: np.ndarray | None = None
) -> Scores:
    """Assigned segment, confidence, runner-up segment and its probability for one row
    (1-D input) or many; processed in chunks so a million rows stay cheap. ``placed``:
    the segmenter's own labels of these rows, when its fit already computed them
    (HDBSCAN's membership rule), handed to its ``assign`` instead of placing them again."""
    X = _as_matrix(X)
    n_rows = len(X)
    cluster, runner_up = np.empty(n_rows, np.intp), np.empty(n_rows, np.intp)
    confidence, runner_p, nearest_d2 = np.empty(n_rows), np.empty(n_rows), np.empty(n_rows)
    for sl in _row_slices(n_rows, SCORE_CHUNK_ROWS):
        if hasattr(pipeline[-1], "assign"):  # a segmenter of clustering.algorithms
            Xs = to_model_space(pipeline, X[sl])
            if placed is None:
                part = pipeline[-1].assign(Xs, sigma2)
            else:
                part = pipeline[-1].assign(Xs, sigma2, placed[sl])
            cluster[sl], confidence[sl], nearest_d2[sl] = (
                part.cluster,
                part.confidence,
                part.nearest_d2,
            )
            runner_up[sl], runner_p[sl] = part.runner_up, part.runner_up_probability
            continue
        d2 = _chunk_d2(pipeline, X[sl])
        nearest_d2[sl] = d2.min(axis=1)
        proba = _softmax(d2, sigma2)
        top = _nearest_two(d2)
        cluster[sl], runner_up[sl] = top[:, 0], top[:, 1]
        confidence[sl] = np.take_along_axis(proba, top[:, :1], axis=1)[:, 0]
        runner_p[sl] = np.take_along_axis(proba, top[:, 1:2], axis=1)[:, 0]
    return Scores(cluster, confidence, runner_up, runner_p, nearest_d2=nearest_d2)


def unusual_distance2(nearest_d2: np.ndarray) -> float:
    """The squared distance (in sd) to the nearest centre that only 1 in 1,000 of the
    training customers exceed: beyond it a new customer is unusual (UNUSUAL_QUANTILE)."""
    return float(np.quantile(nearest_d2, UNUSUAL_QUANTILE))


def confidence_rounded(p: float, decimals: int = 4) -> float:
    """``p`` rounded down: a shown 50 % is never a 49.996 % in the "low" band."""
    factor = 10**decimals
    # The relative nudge keeps 0.29 * 100 = 28.999999999999996 at 29. It may lift a value
    # a hair below a band edge onto it; confidence_band judges the shown value, so the
    # band and the number still agree.
    return math.floor(float(p) * factor * (1 + 1e-12)) / factor


def confidence_band(p: float) -> str:
    """Plain-words band for a probability in [0, 1], judged on the value as shown."""
    return band_for(CONFIDENCE_BANDS, confidence_rounded(p)).label


# --------------------------------------------------------------------------- explain


@dataclass(frozen=True)
class FeatureComparison:
    """One feature of a customer next to the segment centre (original units and sd)."""

    feature: str
    value: float
    centroid_value: float
    diff_sd: float


def explain(
    model: Pipeline, x_row: ArrayLike, cluster_index: int, feature_names: Sequence[str]
) -> list[FeatureComparison]:
    """Compare one customer with a segment centre of a fitted pipeline."""
    return CompactModel.from_pipeline(model, 1.0).explain(
        _as_matrix(x_row, feature_names)[0], cluster_index, validate_features(feature_names)
    )


# --------------------------------------------------------------------------- stability


def _reference_labels(
    X: np.ndarray, reference: Pipeline | ArrayLike, rows: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled working rows and the final model's labels on them."""
    if isinstance(reference, Pipeline):
        Xs = to_model_space(reference, X)
        return Xs, reference[-1].predict(Xs)
    labels = np.asarray(reference)
    labels = labels if rows is None else labels[rows]
    return StandardScaler().fit_transform(X), labels


def stability(
    X: ArrayLike,
    reference: Pipeline | ArrayLike,
    *,
    k: int | None = None,
    n_subsamples: int = 3,
    fraction: float = 0.8,
    random_state: int | None = 0,
    sample_max: int = STABILITY_SAMPLE_MAX,
) -> float:
    """Mean adjusted Rand index between the final labels (pipeline or label array) and
    independent refits on random subsamples. Refits use fresh seeds and k-means++ seeding,
    never the final centroids, so agreement is earned. Works on <= sample_max rows."""
    X = _as_matrix(X)
    rng = np.random.default_rng(random_state)
    rows = None if len(X) <= sample_max else rng.choice(len(X), sample_max, replace=False)
    Xs, labels = _reference_labels(X if rows is None else X[rows], reference, rows)
    k = k if k is not None else int(labels.max()) + 1
    size = max(k + 1, round(fraction * len(Xs)))
    scores = []
    for seed in rng.integers(0, 2**31 - 1, size=n_subsamples):
        idx = rng.choice(len(Xs), size=min(size, len(Xs)), replace=False)
        refit = KMeans(n_clusters=k, n_init=STABILITY_N_INIT, random_state=int(seed))
        scores.append(adjusted_rand_score(labels[idx], refit.fit(Xs[idx]).labels_))
    return float(np.mean(scores))


# --------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    """Silhouette band ("strong", "reasonable", "weak", "poor") and its plain-words text."""

    band: str
    text: str


def silhouette_verdict(s: float) -> Verdict:
    """The silhouette's band (bands.SILHOUETTE_BANDS) and what it means in plain words."""
    band = band_for(SILHOUETTE_BANDS, s)
    return Verdict(band.key, band.text)


# --------------------------------------------------------------------------- retrains


def match_centroids(
    previous: ArrayLike,
    new: ArrayLike,
    *,
    scale: ArrayLike | None = None,
    max_distance: float | None = None,
    allowed: ArrayLike | None = None,
) -> dict[int, int]:
    """Map new segment index -> previous segment index, one-to-one, closest pairs first
    (see _closest_pairs_first); unmatched new segments are absent.

    Both centroid sets must live in one space. Scaled centroids of two runs are NOT
    comparable (each run has its own scaler), so pass ``centroids_original`` of both runs
    and a common ``scale`` (e.g. the new run's ``scaler_of(pipeline).scale_``): distances are then
    in standard deviations. Pairs farther apart than ``max_distance``, or False in the
    boolean ``allowed`` matrix (new x previous), are not matches."""
    prev = np.atleast_2d(np.asarray(previous, dtype=np.float64))
    cur = np.atleast_2d(np.asarray(new, dtype=np.float64))
    if prev.size == 0 or cur.size == 0:
        return {}
    if scale is not None:
        prev, cur = prev / np.asarray(scale), cur / np.asarray(scale)
    cost = cdist(cur, prev)
    usable = np.ones_like(cost, dtype=bool) if allowed is None else np.array(allowed, bool)
    if max_distance is not None:
        usable &= cost <= max_distance
    return _closest_pairs_first(cost, usable)


def _closest_pairs_first(cost: np.ndarray, usable: np.ndarray) -> dict[int, int]:
    """Pair the closest usable (new, previous) pair, take both out, repeat.

    Unlike a minimum-total assignment this never trades a close pair for two farther
    ones: a segment goes on in the cluster nearest to it unless that cluster is even
    nearer to another segment (a stable matching), so an edited strategy stays with the
    customers it was written for. Ties go to the lower indexes."""
    pairs: dict[int, int] = {}
    taken_previous: set[int] = set()
    order = np.argsort(cost, axis=None, kind="stable")
    for flat in order:
        new, old = np.unravel_index(int(flat), cost.shape)
        if not usable[new, old] or new in pairs or old in taken_previous:
            continue
        pairs[int(new)] = int(old)
        taken_previous.add(int(old))
    return pairs


# --------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class CompactModel:
    """The numbers a prediction needs, taken from a fitted pipeline once.

    Scoring a single customer through scikit-learn spends most of its time in input
    checks; this does the same arithmetic (scale, squared distances, softmax) in a
    few numpy operations, so a web request stays well under a millisecond.
    """

    mean: np.ndarray
    scale: np.ndarray
    centres_sd: np.ndarray
    sigma2: float
    unusual_d2: float  # see unusual_distance2
    log_mask: np.ndarray | None = None  # columns read as log(1 + x)
    # A segmenter of clustering.algorithms (mixture, density, Ward): it assigns and gives
    # the confidence by its own rule; None for K-Means (the round clouds below).
    segmenter: object | None = None
    encoder: OneHotColumns | None = None  # the one-hot step of a run with categories

    @classmethod
    def from_pipeline(
        cls, pipeline: Pipeline, sigma2: float, unusual_d2: float | None = None
    ) -> CompactModel:
        """``unusual_d2`` comes from the run; without one (a run trained before it was
        kept), the round-cloud model's own 99.9 % distance stands in."""
        scaler = scaler_of(pipeline)
        centres = centroids_sd(pipeline).copy()
        sigma2 = max(float(sigma2), MIN_VARIANCE)
        if unusual_d2 is None:
            unusual_d2 = float(chi2.ppf(UNUSUAL_QUANTILE, centres.shape[1])) * sigma2
        mask = log_mask_of(pipeline)
        return cls(
            scaler.mean_.copy(),
            scaler.scale_.copy(),
            centres,
            sigma2,
            unusual_d2,
            mask.copy() if mask.any() else None,
            pipeline[-1] if hasattr(pipeline[-1], "assign") else None,
            encoder_of(pipeline),
        )

    def _z(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.log_mask is not None:
            X = log_transform(np.atleast_2d(X), self.log_mask)
        if self.encoder is not None:
            X = self.encoder.transform(X)
        return (X - self.mean) / self.scale

    def centre_original(self, cluster_index: int) -> np.ndarray:
        centre = self.centres_sd[cluster_index] * self.scale + self.mean
        if self.encoder is not None:
            centre = self.encoder.collapse(centre)[0]
        if self.log_mask is not None:
            centre = centre.copy()
            centre[self.log_mask] = np.expm1(centre[self.log_mask])
        return centre

    def squared_distances(self, X: np.ndarray) -> np.ndarray:
        """(n, K) squared distances to the centres, in standard deviations."""
        z = self._z(X)
        return ((z[:, None, :] - self.centres_sd[None, :, :]) ** 2).sum(axis=2)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        if hasattr(self.segmenter, "predict_proba"):
            return self.segmenter.predict_proba(self._z(np.atleast_2d(X)))
        return _softmax(self.squared_distances(X), self.sigma2)

    def score(self, X: np.ndarray) -> Scores:
        if self.segmenter is not None:
            part = self.segmenter.assign(self._z(np.atleast_2d(X)), self.sigma2)
            return Scores(
                part.cluster,
                part.confidence,
                part.runner_up,
                part.runner_up_probability,
                unusual=part.nearest_d2 > self.unusual_d2,
            )
        d2 = self.squared_distances(X)
        proba = _softmax(d2, self.sigma2)
        top = _nearest_two(d2)
        rows = np.arange(len(proba))
        return Scores(
            top[:, 0],
            proba[rows, top[:, 0]],
            top[:, 1],
            proba[rows, top[:, 1]],
            unusual=d2.min(axis=1) > self.unusual_d2,
        )

    def explain(
        self, x: np.ndarray, cluster_index: int, feature_names: Sequence[str]
    ) -> list[FeatureComparison]:
        centre_sd = self.centres_sd[cluster_index]
        centre = self.centre_original(cluster_index)
        diff = self._z(np.atleast_2d(x))[0] - centre_sd
        if self.encoder is not None:  # a category has no direction: its difference reads 0
            diff = self.encoder.collapse(diff, fill=0.0)[0]
        return [
            FeatureComparison(f, float(x[i]), float(centre[i]), float(diff[i]))
            for i, f in enumerate(feature_names)
        ]
