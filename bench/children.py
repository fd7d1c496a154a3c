"""The measured programs of `make bench`, each run in a fresh process by bench/run.py.

    python bench/children.py prepare COUNT NPY   # ensure COUNT demo customers; dump features
    python bench/children.py train [ALGORITHM]   # full retrain through the training service
    python bench/children.py baseline-algorithm ALGORITHM NPY  # bare scikit-learn: gmm/ward/hdbscan
    python bench/children.py baseline-small NPY  # bare scikit-learn: KMeans + silhouette_score
    python bench/children.py baseline-large NPY  # bare scikit-learn: MiniBatchKMeans, same settings
    python bench/children.py predict             # one prediction: service vs sklearn predict
    python bench/children.py drift               # drift of the active run over every customer

Each prints one JSON line with its wall time and peak memory (ru_maxrss).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
K_VALUES = range(2, 11)
# The features the bare scripts cluster on, and the service's retrain is asked for.
FEATURES = ("age", "annual_income", "spending_score", "purchase_frequency")
# Every benchmark customer also has this many attributes (15 amounts, 5 regions), as real
# files bring: the retrain reads them for its statistics.
ATTRIBUTES = 20
RANDOM_STATE = 0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**values) -> None:
    print(json.dumps({**values, "peak_mb": round(peak_mb(), 1)}), flush=True)


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "segmentation_site.settings")
    import django

    django.setup()


def prepare(count: int, npy: str) -> None:
    django_setup()
    from django.core.management import call_command

    from clustering.models import TrainingRun
    from clustering.reading import customers_feature_matrix
    from customers.models import Attribute, Customer
    from customers.selectors import catalogue_current

    call_command("migrate", verbosity=0)
    if Customer.objects.count() != count or Attribute.objects.count() != ATTRIBUTES:
        TrainingRun.objects.all().delete()
        Customer.objects.all().delete()
        Attribute.objects.all().delete()
        call_command("generate_customers", count=count, seed=42, attributes=ATTRIBUTES, verbosity=0)
    TrainingRun.objects.all().delete()  # every measured retrain starts from the same state
    data = customers_feature_matrix(features=list(FEATURES), catalogue=catalogue_current())
    np.save(npy, data.X)
    emit(customers=len(data.X))


def train(algorithm: str = "kmeans") -> None:
    django_setup()
    from clustering.models import TrainingRun
    from clustering.services import (
        TrainingParams,
        training_run_claim,
        training_run_execute,
        training_run_start,
    )

    started = time.perf_counter()
    # The four demo features (the twenty attributes are read too, for the statistics), no
    # log scale: the bare scripts scale the raw values, and silhouettes are compared K by K.
    params = TrainingParams(features=FEATURES, log_features=(), algorithm=algorithm)
    run = training_run_start(params=params, enqueue=False)
    training_run_claim(run_id=run.id)
    run = training_run_execute(run_id=run.id)
    seconds = time.perf_counter() - started
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert tuple(run.features) == FEATURES, f"the service chose {run.features}, not {FEATURES}"
    emit(
        seconds=seconds,
        k=run.chosen_k,
        silhouette=run.silhouette_by_k,
        timings=run.timings,
        customers=run.customers_used,
        stability=run.stability,
    )


def baseline_small(npy: str) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    from clustering.engine import N_INIT  # the engine's restarts: a fair comparison

    X = np.load(npy)
    started = time.perf_counter()
    Xs = StandardScaler().fit_transform(X)
    silhouettes = []
    for k in K_VALUES:
        labels = KMeans(n_clusters=k, n_init=N_INIT, random_state=RANDOM_STATE).fit_predict(Xs)
        silhouettes.append(float(silhouette_score(Xs, labels)))
    best = list(K_VALUES)[int(np.argmax(silhouettes))]
    labels = KMeans(n_clusters=best, n_init=N_INIT, random_state=RANDOM_STATE).fit_predict(Xs)
    stability = bare_metrics(Xs, labels, kmeans_refit(best))
    emit(seconds=time.perf_counter() - started, k=best, silhouette=silhouettes, stability=stability)


def kmeans_refit(k: int):
    from sklearn.cluster import KMeans

    from clustering.engine import STABILITY_N_INIT

    return lambda X, seed: KMeans(k, n_init=STABILITY_N_INIT, random_state=seed).fit_predict(X)


def bare_metrics(Xs: np.ndarray, labels: np.ndarray, refit) -> float:
    """What the service reports besides the silhouette, the plain scikit-learn way:
    Calinski-Harabasz and Davies-Bouldin on all customers in a segment, and stability as
    the mean adjusted Rand index of 10 refits on random 80 % of at most 5,000 of them."""
    from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score

    kept = labels >= 0
    calinski_harabasz_score(Xs[kept], labels[kept])
    davies_bouldin_score(Xs[kept], labels[kept])
    rng = np.random.default_rng(RANDOM_STATE)
    rows = rng.choice(len(Xs), min(5_000, len(Xs)), replace=False)
    scores = []
    for seed in range(10):
        idx = rng.choice(rows, int(0.8 * len(rows)), replace=False)
        scores.append(adjusted_rand_score(labels[idx], refit(Xs[idx], seed)))
    return float(np.mean(scores))


def _silhouette(Xs: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    from clustering.engine import SILHOUETTE_EXACT_MAX

    kept = labels >= 0
    sample = SILHOUETTE_EXACT_MAX if kept.sum() > SILHOUETTE_EXACT_MAX else None
    return float(
        silhouette_score(Xs[kept], labels[kept], sample_size=sample, random_state=RANDOM_STATE)
    )


def _sample(Xs: np.ndarray, size: int) -> np.ndarray:
    """The rows the service samples too (the same seeded draw), so silhouettes compare."""
    from sklearn.utils import check_random_state

    if len(Xs) <= size:
        return Xs
    return Xs[np.sort(check_random_state(RANDOM_STATE).permutation(len(Xs))[:size])]


def baseline_gmm(Xs: np.ndarray) -> tuple[int, list[float], float]:
    """GaussianMixture per K and per covariance type on at most 20,000 customers (the
    service's automatic mode), the type and K of the lowest BIC, all customers scored."""
    from sklearn.mixture import GaussianMixture

    from clustering.algorithms import COVARIANCE_TYPES, GMM_N_INIT, GMM_SAMPLE_MAX

    def mixture(k: int, kind: str, seed: int) -> GaussianMixture:
        return GaussianMixture(
            k, covariance_type=kind, n_init=GMM_N_INIT, random_state=seed, reg_covar=1e-5
        )

    sample = _sample(Xs, GMM_SAMPLE_MAX)
    fits = {kind: [mixture(k, kind, RANDOM_STATE).fit(sample) for k in K_VALUES]
            for kind in COVARIANCE_TYPES}  # fmt: skip
    bic = {kind: [model.bic(sample) for model in models] for kind, models in fits.items()}
    kind = min(bic, key=lambda c: min(bic[c]))
    silhouettes = [_silhouette(sample, model.predict(sample)) for model in fits[kind]]
    k = list(K_VALUES)[int(np.argmin(bic[kind]))]
    labels = mixture(k, kind, RANDOM_STATE).fit(sample).predict(Xs)
    stability = bare_metrics(Xs, labels, lambda X, s: mixture(k, kind, s).fit(X).predict(X))
    return k, silhouettes, stability


def baseline_ward(Xs: np.ndarray) -> tuple[int, list[float], float]:
    """Ward's tree on at most 10,000 customers (scipy, as scikit-learn does inside), cut at
    each K; every customer to the nearest centre of the best cut."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import pairwise_distances_argmin

    from clustering.algorithms import WARD_SAMPLE_MAX

    sample = _sample(Xs, WARD_SAMPLE_MAX)
    tree = linkage(sample, method="ward")
    cuts = [fcluster(tree, k, criterion="maxclust") - 1 for k in K_VALUES]
    silhouettes = [_silhouette(sample, labels) for labels in cuts]
    best = int(np.argmax(silhouettes))
    k = list(K_VALUES)[best]
    centres = np.array([sample[cuts[best] == c].mean(axis=0) for c in range(k)])
    labels = pairwise_distances_argmin(Xs, centres)

    def refit(X, seed):
        return fcluster(linkage(X, method="ward"), k, criterion="maxclust") - 1

    return k, silhouettes, bare_metrics(Xs, labels, refit)


def baseline_hdbscan(Xs: np.ndarray) -> tuple[int, list[float], float]:
    """HDBSCAN on at most 20,000 customers; the others take the nearest fitted member's
    group (noise included)."""
    from sklearn.cluster import HDBSCAN
    from sklearn.neighbors import NearestNeighbors

    from clustering.algorithms import DENSITY_SAMPLE_MAX

    size = max(10, int(np.ceil(0.01 * min(len(Xs), DENSITY_SAMPLE_MAX))))
    sample = _sample(Xs, DENSITY_SAMPLE_MAX)
    found = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(sample)
    nearest = NearestNeighbors(n_neighbors=1).fit(sample).kneighbors(Xs, return_distance=False)
    labels = found[nearest[:, 0]]
    silhouettes = [_silhouette(Xs, labels)]
    # The refits look for groups of the same share of their (smaller) samples.
    refit_size = max(5, round(size * int(0.8 * min(len(Xs), 5_000)) / len(sample)))
    stability = bare_metrics(
        Xs, labels, lambda X, s: HDBSCAN(min_cluster_size=refit_size, copy=True).fit_predict(X)
    )
    return int(found.max()) + 1, silhouettes, stability


def baseline_algorithm(algorithm: str, npy: str) -> None:
    from sklearn.preprocessing import StandardScaler

    X = np.load(npy)
    started = time.perf_counter()
    Xs = StandardScaler().fit_transform(X)
    run = {"gmm": baseline_gmm, "ward": baseline_ward, "hdbscan": baseline_hdbscan}[algorithm]
    k, silhouettes, stability = run(Xs)
    emit(seconds=time.perf_counter() - started, k=k, silhouette=silhouettes, stability=stability)


def baseline_large(npy: str) -> None:
    """MiniBatchKMeans with the engine's large-data settings, sweep on the same sample size."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    from clustering.engine import (
        MINIBATCH_N_INIT as N_INIT,
    )
    from clustering.engine import (
        MINIBATCH_SIZE,
        SILHOUETTE_EXACT_MAX,
        SWEEP_SAMPLE_SIZE,
    )

    X = np.load(npy)
    started = time.perf_counter()
    Xs = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(RANDOM_STATE)
    sample = Xs[rng.choice(len(Xs), min(SWEEP_SAMPLE_SIZE, len(Xs)), replace=False)]
    silhouettes = []
    for k in K_VALUES:
        model = MiniBatchKMeans(
            n_clusters=k, batch_size=MINIBATCH_SIZE, n_init=N_INIT, random_state=RANDOM_STATE
        ).fit(sample)
        silhouettes.append(
            float(
                silhouette_score(
                    sample,
                    model.labels_,
                    sample_size=SILHOUETTE_EXACT_MAX,
                    random_state=RANDOM_STATE,
                )
            )
        )
    best = list(K_VALUES)[int(np.argmax(silhouettes))]
    final = MiniBatchKMeans(
        n_clusters=best, batch_size=MINIBATCH_SIZE, n_init=N_INIT, random_state=RANDOM_STATE
    ).fit(Xs)
    labels = final.predict(Xs)
    stability = bare_metrics(Xs, labels, kmeans_refit(best))
    emit(seconds=time.perf_counter() - started, k=best, silhouette=silhouettes, stability=stability)


def predict(repeats: int = 2000) -> None:
    django_setup()
    from clustering.prediction import model_active, predict_one

    row = {"age": 38, "annual_income": 95.0, "spending_score": 60, "purchase_frequency": 28}
    model = model_active()
    one = np.array([[row[f] for f in model.features]], dtype=np.float64)
    predict_one(row)  # warm the per-process model cache, as a serving process has it
    started = time.perf_counter()
    for _ in range(repeats):
        predict_one(row)
    service = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        model.pipeline.predict(one)
    bare = (time.perf_counter() - started) / repeats
    emit(service_ms=service * 1000, sklearn_ms=bare * 1000)


def drift() -> None:
    """Drift of the run `train` made, over every customer: their features read, binned
    against the training deciles and placed by the model (the same work whatever moved)."""
    django_setup()
    from operations.monitoring import drift_measure

    started, cpu = time.perf_counter(), time.process_time()
    report = drift_measure()
    emit(
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,  # this process only (not the database's)
        customers=report.customers_now,
        level=report.level,
        max_psi=report.max_psi,
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {
        "prepare": lambda: prepare(int(args[0]), args[1]),
        "train": lambda: train(*args),
        "baseline-algorithm": lambda: baseline_algorithm(args[0], args[1]),
        "baseline-small": lambda: baseline_small(args[0]),
        "baseline-large": lambda: baseline_large(args[0]),
        "predict": predict,
        "drift": drift,
    }[command]()
