"""Training runs: start, execute, write and activate, fail; segment matching.

``training_run_execute`` computes everything first (pure engine calls on
arrays) and only then writes, in one transaction that also switches the
active run. A run that fails at any point leaves the active model as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import numpy as np
from django import db
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, OuterRef, Q, When
from django.db.models.functions import Now
from django.dispatch import Signal
from django.utils import timezone
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from clustering import algorithms, engine, naming, palette
from clustering.comparisons import run_moves_warm
from clustering.model_store import ModelFileError, model_delete, model_save
from clustering.models import RESEND_AFTER, Cluster, ClusterAssignment, Segment, TrainingRun
from clustering.prediction import cache_clear as prediction_cache_clear
from clustering.preparation import (
    NotEnoughData,
    PreparedData,
    features_default,
    training_data_prepare,
)
from clustering.reading import SEX_CODES, Categories, FeatureMatrix
from clustering.selectors import run_in_flight
from clustering.signals import run_activated
from customers.catalogue import Catalogue
from customers.models import Customer
from customers.selectors import catalogue_current
from purchases.services import rfm_refresh

logger = logging.getLogger(__name__)

ASSIGNMENT_CHUNK = 50_000
PROJECTION_POINTS = 5_000
# Two runs' centroids further apart than this (in standard deviations) are different personas.
MATCH_MAX_DISTANCE = 1.5


# Sent inside the transaction that writes a succeeded run, with what it trained on (run_id,
# features, X, customer_pks, labels): what a receiver stores (operations: the drift
# baseline) is written with the run or not at all.
run_trained = Signal()
# Asked (run_id) before a succeeded run becomes the active model by itself: a receiver that
# answers False keeps it waiting for a person (operations: a schedule's activation rule).
activation_requested = Signal()


class TrainingError(Exception):
    """A problem a marketer can act on; its message is shown as it is."""


class ActivationInProgress(Exception):
    """Another activation held the lock; it has finished and ``active_run_id`` is active now."""

    def __init__(self, active_run_id: int | None) -> None:
        super().__init__(f"another activation was in progress; run {active_run_id} is now active")
        self.active_run_id = active_run_id


class QueueUnavailable(Exception):
    """The broker could not take the training task; the run was marked failed."""

    def __init__(self, run_id: int, detail: str) -> None:
        super().__init__(detail)
        self.run_id = run_id


@dataclass(frozen=True)
class TrainingParams:
    """What a retrain was asked for. No features: the catalogue's numeric features that
    enough customers have (chosen when the run starts, on the data as it is then)."""

    features: tuple[str, ...] = ()
    k: int | None = None
    k_min: int = 2
    k_max: int = 10
    missing: str = TrainingRun.Missing.EXCLUDE
    # None: log-transform skewed money-like features automatically; else exactly these.
    log_features: tuple[str, ...] | None = None
    # One of clustering.algorithms.ALGORITHMS, or "compare" (all of them, one recommended).
    algorithm: str = "kmeans"
    # A mixture's covariance type: "auto" (chosen by BIC) or one of COVARIANCE_TYPES.
    covariance: str = algorithms.COVARIANCE_AUTO

    def __post_init__(self) -> None:
        algorithms.covariance_types(self.covariance)  # raises ValueError when unknown
        if self.algorithm not in (*algorithms.ALGORITHMS, algorithms.COMPARE):
            choices = ", ".join((*algorithms.ALGORITHMS, algorithms.COMPARE))
            raise ValueError(f"the algorithm must be one of {choices}")
        if self.features:
            engine.validate_features(self.features)
        if self.missing not in TrainingRun.Missing.values:
            raise ValueError(f"missing must be one of {', '.join(TrainingRun.Missing.values)}")
        if self.k is not None:
            if not 2 <= self.k <= 20:
                raise ValueError("the number of segments must be between 2 and 20")
            # A fixed number is its own range: a leftover range is ignored, and the run
            # records what was really tried.
            object.__setattr__(self, "k_min", self.k)
            object.__setattr__(self, "k_max", self.k)
        if not 2 <= self.k_min <= self.k_max <= 20:
            raise ValueError("the K range must satisfy 2 <= minimum <= maximum <= 20")

    def k_values(self) -> range:
        return range(self.k, self.k + 1) if self.k else range(self.k_min, self.k_max + 1)


def training_run_start(*, user=None, params: TrainingParams, enqueue: bool = True) -> TrainingRun:
    """Queue a training, or return the one already pending or running.

    ``enqueue=False`` leaves the run pending for the caller to claim and train itself.
    """
    training_runs_reap()
    existing = run_in_flight()
    if existing:
        return existing
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                features=list(params.features),
                features_auto=not params.features,
                missing=params.missing,
                log_requested=None if params.log_features is None else list(params.log_features),
                k_requested=params.k,
                k_min=params.k_min,
                k_max=params.k_max,
                algorithm_requested=params.algorithm,
                covariance_requested=params.covariance,
                created_by=user if user and user.is_authenticated else None,
                step="Waiting for a worker",
            )
    except IntegrityError:
        # Another request created one between our check and our insert.
        return run_in_flight() or training_run_start(user=user, params=params, enqueue=enqueue)
    if enqueue:
        transaction.on_commit(partial(training_run_enqueue, run_id=run.id), robust=False)
    return run


def training_run_first() -> TrainingRun | None:
    """Queue the first training, with default options, on a database that has customers but
    neither an active model nor a run in flight (`make run` on a fresh database)."""
    if not Customer.objects.exists():
        return None
    if TrainingRun.objects.filter(Q(is_active=True) | Q(in_flight=True)).exists():
        return None
    return training_run_start(params=TrainingParams())


def training_run_enqueue(*, run_id: int) -> None:
    from clustering.tasks import train_task

    try:
        train_task.delay(run_id)
    except Exception as problem:  # kombu raises many kinds; all mean "not queued"
        logger.warning("could not queue run %s: %s", run_id, problem)
        training_run_fail(
            run_id=run_id,
            message="The training queue is unavailable, so the retrain was not started. "
            "Try again in a few minutes; the current model is still active.",
        )
        raise QueueUnavailable(run_id, str(problem)) from problem


def training_run_claim(*, run_id: int) -> bool:
    """Pending -> running in one UPDATE, so a task delivered twice runs once."""
    return bool(
        TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.PENDING).update(
            status=TrainingRun.Status.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=Now(),
            step="Starting",
            progress=1,
        )
    )


def training_run_fail(*, run_id: int, message: str) -> None:
    TrainingRun.objects.filter(id=run_id, in_flight=True).update(
        status=TrainingRun.Status.FAILED,
        in_flight=None,
        error=message,
        finished_at=timezone.now(),
        step="Failed",
    )


class ProgressReporter:
    """Writes progress and the current step, at most twice a second, with a heartbeat."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.last = 0.0
        self.step = ""

    def __call__(self, percent: float, step: str, *, force: bool = False) -> None:
        self.step = step  # what the run was doing, for the message if it fails
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        TrainingRun.objects.filter(id=self.run_id, status=TrainingRun.Status.RUNNING).update(
            progress=max(1, min(99, int(percent))), step=step[:120], heartbeat_at=Now()
        )

    def between(self, start: float, end: float) -> Callable[[float, str], None]:
        """An engine progress callback (fraction 0-1) mapped onto start..end percent."""
        return lambda fraction, step: self(start + (end - start) * fraction, step)


@dataclass
class Outcome:
    """Everything a successful training computed, before anything is written."""

    data: FeatureMatrix
    sweep: engine.SweepResult
    k: int
    pipeline: object
    labels: np.ndarray
    confidence: np.ndarray
    names: list[naming.ClusterName]
    stability: float
    sigma2: float
    unusual_d2: float
    unusual: np.ndarray
    prepared: PreparedData
    catalogue: Catalogue
    min_share: float
    timings: dict[str, float] = field(default_factory=dict)
    algorithm: str = "kmeans"
    stab: algorithms.Stability | None = None
    quality: algorithms.Quality | None = None
    silhouette: float | None = None
    bic_by_k: tuple[float, ...] = ()
    covariance_type: str = ""
    # By customer: in no dense group (HDBSCAN), label k (the Unsegmented cluster).
    noise: np.ndarray | None = None
    # A "compare" retrain's other algorithms, each written as a run of its own.
    candidates: list[Outcome] = field(default_factory=list)
    # A consensus that did not beat its parts: in the comparison table, not written as a run.
    discarded: list[Outcome] = field(default_factory=list)

    @property
    def has_noise(self) -> bool:
        return self.noise is not None and bool(self.noise.any())

    @property
    def features(self) -> tuple[str, ...]:
        return self.prepared.features


def _names(pipeline, prepared: PreparedData, catalogue, clusters: np.ndarray) -> list:
    """Names from the numeric features (a category has no high or low, so it never makes a
    persona); the reason then gives each categorical feature's most common category."""
    features = prepared.features
    categories = prepared.data.category_values
    numeric = [i for i, key in enumerate(features) if key not in categories]
    columns = numeric or list(range(len(features)))  # only categories: every name neutral
    names = naming.name_clusters(
        engine.centroids_by_feature_sd(pipeline)[:, columns],
        [features[i] for i in columns],
        labels=catalogue.labels(),
        words=catalogue.words(),
    )
    if not categories:
        return names
    named = []
    for index, name in enumerate(names):
        parts = []
        for key, values in categories.items():
            codes = prepared.data.X[clusters == index, features.index(key)].astype(int)
            if len(codes):
                top = np.bincount(codes, minlength=len(values))
                parts.append(
                    f"{catalogue[key].short_label} {values[top.argmax()]} "
                    f"{100 * top.max() / len(codes):.0f} %"
                )
        reason = "; ".join([name.reason, *parts]) if numeric else "; ".join(parts)
        named.append(dataclasses.replace(name, reason=reason))
    return named


def _timed(timings: dict[str, float], name: str, function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    timings[name] = round(time.perf_counter() - started, 3)
    return result


def _check_enough(prepared: PreparedData, k_values: range) -> None:
    needed = max(k_values) + 1
    rows = int(prepared.fit_rows.sum())
    if rows < needed:
        known = ", ".join(prepared.features)
        raise TrainingError(
            f"Only {rows} customer(s) have all of {known} filled in "
            f"({prepared.data.excluded} left out for missing values, "
            f"{int(prepared.outliers.sum())} far outside the rest); at least {needed} are "
            f"needed for {max(k_values)} segments. Import more customers, choose fewer "
            "features, or fill in missing values with the median."
        )


def _prepare(run: TrainingRun, catalogue: Catalogue) -> PreparedData:
    """The run's features (chosen now when automatic) and its customers, ready to fit."""
    try:
        features = tuple(run.features) or features_default(catalogue=catalogue)
        prepared = training_data_prepare(
            features=catalogue.ordered(features) if run.features_auto else features,
            catalogue=catalogue,
            missing=run.missing,
            log_requested=run.log_requested,
        )
    except NotEnoughData as problem:
        raise TrainingError(str(problem)) from None
    TrainingRun.objects.filter(id=run.id).update(features=list(prepared.features))
    return prepared


def min_segment_share(n_rows: int) -> float:
    """The smallest segment the automatic K accepts, as a share of the customers."""
    size = settings.CLUSTERING_MIN_SEGMENT_SIZE / max(n_rows, 1)
    return max(settings.CLUSTERING_MIN_SEGMENT_SHARE, size)


def training_compute(*, run: TrainingRun, report: ProgressReporter) -> Outcome:
    """Bring the RFM values up to date, read the customers and fit the model (every
    candidate of a "compare" retrain, the recommended one returned with the others in
    ``candidates``); writes nothing else but progress."""
    timings: dict[str, float] = {}
    k_values = TrainingParams((), run.k_requested, run.k_min, run.k_max).k_values()
    report(1, "Bringing RFM values up to date", force=True)
    _timed(timings, "rfm", rfm_refresh)
    report(2, "Reading customers", force=True)
    catalogue = catalogue_current()
    prepared = _timed(timings, "read", _prepare, run, catalogue)
    _check_enough(prepared, k_values)
    requested = run.algorithm_requested or algorithms.KMEANS
    chosen = list(algorithms.ALGORITHMS) if requested == algorithms.COMPARE else [requested]
    outcomes = []
    for i, algorithm in enumerate(chosen):
        share = 88 / len(chosen)
        progress = report.between(8 + i * share, 8 + (i + 1) * share)
        label = algorithms.ALGORITHMS[algorithm]
        try:
            outcome = _compute_one(run, algorithm, prepared, catalogue, k_values, progress)
        except ValueError as problem:
            if len(chosen) == 1:
                raise TrainingError(f"{label} found no segments: {problem}.") from None
            logger.info("compare run %s: %s found no segments (%s)", run.id, label, problem)
            continue
        outcome.timings = {**timings, **outcome.timings}
        outcomes.append(outcome)
    discarded = []
    if requested == algorithms.COMPARE:
        report(96, "Building the consensus of the algorithms", force=True)
        consensus = _consensus(run, outcomes, prepared, catalogue, k_values)
        if consensus is not None:
            kept = algorithms.consensus_kept([_score(o) for o in outcomes], _score(consensus))
            (outcomes if kept else discarded).append(consensus)
    chosen = _recommended_first(outcomes)
    chosen.discarded = discarded
    return chosen


def _score(outcome: Outcome) -> algorithms.CandidateScore:
    noise = float(outcome.noise.mean()) if outcome.has_noise else 0.0
    return algorithms.CandidateScore(
        outcome.algorithm, outcome.silhouette, outcome.stab.mean, noise
    )


def _consensus(run, outcomes, prepared, catalogue, k_values) -> Outcome | None:
    """The consensus ensemble of the compared algorithms' refits (see ENSEMBLE_RULE)."""
    parts = [o.k for o in outcomes if o.algorithm in algorithms.ENSEMBLE_BASES]
    if not parts:
        return None
    k_guess = max(set(parts), key=lambda k: (parts.count(k), -k))
    try:
        return _compute_one(
            run,
            algorithms.ENSEMBLE,
            prepared,
            catalogue,
            k_values,
            lambda fraction, step: None,
            k_guess=k_guess,
        )
    except ValueError as problem:
        logger.info("compare run %s: no consensus (%s)", run.id, problem)
        return None


def _recommended_first(outcomes: list[Outcome]) -> Outcome:
    """The outcome the recommendation rule picks, the others as its candidates."""
    if len(outcomes) == 1:
        return outcomes[0]
    best = algorithms.recommend([_score(o) for o in outcomes])
    chosen = next(o for o in outcomes if o.algorithm == best)
    chosen.candidates = [o for o in outcomes if o is not chosen]
    return chosen


def _placed_by_fit(pipeline, prepared) -> np.ndarray | None:
    """HDBSCAN's fit already placed the customers it was fitted on by its membership
    rule (``labels_``); only the left-out outliers still need placing. None for the
    other algorithms, whose scoring computes each label once anyway."""
    segmenter = pipeline[-1]
    if not isinstance(segmenter, algorithms.DensitySegments):
        return None
    fit_rows = prepared.fit_rows
    placed = np.empty(len(fit_rows), dtype=np.intp)
    placed[fit_rows] = segmenter.labels_
    if (~fit_rows).any():
        rest = prepared.data.X[~fit_rows]
        placed[~fit_rows] = segmenter.predict(engine.to_model_space(pipeline, rest))
    return placed


def _compute_one(
    run, algorithm, prepared, catalogue, k_values, progress, k_guess: int | None = None
) -> Outcome:
    """One algorithm on the prepared customers: sweep, fit, score, stability, names."""
    timings: dict[str, float] = {}
    random_state = settings.CLUSTERING_RANDOM_STATE
    X_model = prepared.X_model()
    X_fit = prepared.data.X[prepared.fit_rows]
    min_share = min_segment_share(len(X_model))
    if algorithm == algorithms.ENSEMBLE:
        fitted = _timed(
            timings,
            "sweep",
            algorithms.consensus_fit,
            X_model,
            X_fit,
            k_values=k_values,
            k_guess=run.k_requested or k_guess,
            log_mask=prepared.log_mask,
            min_share=min_share,
            random_state=random_state,
            encoder=prepared.encoder(),
        )
    else:
        fitted = _timed(
            timings,
            "sweep",
            algorithms.sweep_and_fit,
            algorithm,
            X_model,
            X_fit,
            k_values=k_values,
            k_fixed=run.k_requested,
            log_mask=prepared.log_mask,
            min_share=min_share,
            min_size=settings.CLUSTERING_MIN_SEGMENT_SIZE,
            random_state=random_state,
            progress=lambda fraction, step: progress(0.7 * fraction, step),
            covariance=run.covariance_requested,
            encoder=prepared.encoder(),
        )
    pipeline, k = fitted.pipeline, fitted.k
    sigma2 = engine.within_variance(pipeline, len(X_fit))
    progress(0.72, "Scoring customers")
    placed = _placed_by_fit(pipeline, prepared)
    scores = _timed(
        timings, "score", engine.score, pipeline, prepared.data.X, sigma2=sigma2, placed=placed
    )
    noise = scores.cluster == algorithms.NOISE
    labels = np.where(noise, k, scores.cluster)  # Unsegmented is the cluster after the last
    placed = prepared.fit_rows & ~noise
    unusual_d2 = engine.unusual_distance2(scores.nearest_d2[placed if placed.any() else ...])
    Xs_fit = engine.to_model_space(pipeline, X_fit)
    fit_labels = scores.cluster[prepared.fit_rows]
    progress(0.8, "Checking stability")
    # HDBSCAN's refits look for groups as large as its fit did.
    min_size = getattr(pipeline[-1], "min_cluster_size", settings.CLUSTERING_MIN_SEGMENT_SIZE)
    stab = _timed(
        timings,
        "stability",
        algorithms.stability,
        algorithm,
        Xs_fit,
        fit_labels,
        k=k,
        min_size=min_size,
        random_state=random_state,
        covariance_type=fitted.covariance_type or algorithms.GMM_COVARIANCE,
        neighbour_search=getattr(pipeline[-1], "neighbour_search_", None),
    )
    if hasattr(pipeline[-1], "neighbour_search_"):
        pipeline[-1].neighbour_search_ = None  # up to 70 MB, needed no more
    # K-Means' and HDBSCAN's sweep silhouette at K is on these very labels (same fit, same
    # membership rule); a mixture's or Ward's sweep may have run on a sample.
    sweep = fitted.sweep
    known = None
    same_labels = algorithm in (algorithms.KMEANS, algorithms.HDBSCAN_KEY)
    if same_labels and k in sweep.k_values:
        known = sweep.silhouette[sweep.k_values.index(k)]
    quality = _timed(
        timings, "metrics", algorithms.quality, Xs_fit, fit_labels, random_state, silhouette=known
    )
    names = _names(pipeline, prepared, catalogue, scores.cluster)
    outcome = Outcome(
        prepared.data,
        sweep,
        k,
        pipeline,
        labels,
        scores.confidence,
        names,
        stab.mean,
        sigma2,
        unusual_d2,
        prepared.outliers | (~noise & (scores.nearest_d2 > unusual_d2)),
        prepared,
        catalogue,
        min_share,
        timings,
    )
    outcome.algorithm, outcome.stab, outcome.quality = algorithm, stab, quality
    outcome.silhouette, outcome.bic_by_k, outcome.noise = quality.silhouette, fitted.bic_by_k, noise
    outcome.covariance_type = getattr(fitted, "covariance_type", "")
    return outcome


def training_run_execute(*, run_id: int) -> TrainingRun:
    """Train a claimed (running) run end to end; on any error mark it failed."""
    run = TrainingRun.objects.get(id=run_id)
    report = ProgressReporter(run_id)
    stored = None
    saved: list = []  # a compare retrain's other candidates' model files
    heartbeat = Heartbeat(run_id)
    heartbeat.start()
    try:
        started = time.perf_counter()
        # OpenMP threads spin while they wait: on a busy machine (a web server beside
        # the worker) they made a 5,000-customer sweep 25 times slower than one thread.
        with threadpool_limits(limits=settings.CLUSTERING_THREADS):
            outcome = training_compute(run=run, report=report)
        report(92, "Saving the model", force=True)
        stored = model_save(run_id=run.id, pipeline=outcome.pipeline)
        report(93, "Writing segments and assignments", force=True)
        previous_id = (
            TrainingRun.objects.filter(is_active=True).values_list("id", flat=True).first()
        )
        _timed(
            outcome.timings,
            "write",
            training_run_write,
            run=run,
            outcome=outcome,
            stored=stored,
            saved=saved,
        )
        outcome.timings["total"] = round(time.perf_counter() - started, 3)
        TrainingRun.objects.filter(id=run_id).update(timings=outcome.timings)
    except Exception as problem:
        for written in [stored, *saved] if stored else saved:
            model_delete(file_name=written.file_name)
        logger.exception("training run %s failed", run_id)
        _fail_after_error(run_id, problem, step=report.step)
    else:
        # Before pruning, which may take the previous run's assignments away.
        run_moves_warm(earlier_id=previous_id, later_id=run_id)
        assignments_prune()
    finally:
        heartbeat.stop()
    return TrainingRun.objects.get(id=run_id)


def _fail_after_error(run_id: int, problem: Exception, *, step: str) -> None:
    """Mark the run failed with the reason, on a fresh connection when the error took the
    database connection away (a restart, a failover, pg_terminate_backend): the failure must
    be recorded at once, not left to the heartbeat timeout with the wrong reason."""
    lost = isinstance(problem, db.Error) and not _connection_usable()
    if lost:
        connection.close()  # the next query connects again
    training_run_fail(
        run_id=run_id, message=failure_message(problem, step=step, connection_lost=lost)
    )


def _connection_usable() -> bool:
    if connection.connection is None:
        return False
    try:
        return connection.is_usable()
    except db.Error:
        return False


class Heartbeat(threading.Thread):
    """Touches the run's heartbeat from a thread of its own while the worker trains.

    A worker that dies (killed, out of memory, machine lost) stops beating, and
    ``training_runs_reap`` then marks its run failed, so nothing stays "running".
    """

    model = TrainingRun  # any job with a RUNNING status and heartbeat_at (purchases.recovery)

    def __init__(self, run_id: int) -> None:
        super().__init__(name=f"heartbeat-{self.model.__name__}-{run_id}", daemon=True)
        self.run_id = run_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.CLUSTERING_HEARTBEAT_SECONDS):
                try:
                    self.model.objects.filter(
                        id=self.run_id, status=self.model.Status.RUNNING
                    ).update(heartbeat_at=Now())
                except db.Error:
                    # SQLite is locked while the run's results are written, or the
                    # connection dropped: start afresh and beat again next time.
                    logger.warning("heartbeat of run %s skipped", self.run_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def reap_cutoffs():
    """(silent, waiting): a running job whose last heartbeat is older than ``silent`` lost
    its worker; a pending job created before ``waiting`` was never picked up. The one
    definition for every background job (training runs, purchase imports, CLV fits)."""
    return (
        Now() - timedelta(seconds=settings.CLUSTERING_HEARTBEAT_TIMEOUT),
        Now() - timedelta(seconds=settings.CLUSTERING_PENDING_TIMEOUT),
    )


def training_runs_reap() -> int:
    """Fail runs whose worker stopped beating, or that no worker picked up in time.

    Times come from the database's clock (workers may run on other machines), and each
    run is failed by one conditional UPDATE, so a run that beats or is claimed meanwhile
    is left alone.
    """
    silent, waiting = reap_cutoffs()
    dead = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=silent)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.PENDING, created_at__lt=waiting)
    reaped = 0
    # Read first: a page poll must not queue for SQLite's write lock while a run is written.
    if dead.exists():
        reaped += _fail_all(dead, WORKER_SILENT)
    if stale.exists():
        reaped += _fail_all(stale, NO_WORKER)
    return reaped


def training_runs_resend() -> list[int]:
    """Send the task again for runs pending for over a minute; returns their ids.

    Harmless when the first message still exists: claiming a run is one conditional
    UPDATE, so the second delivery finds it running and does nothing. A starting worker and
    Celery beat call this (clustering.tasks); the run's page shows when it was re-sent.
    """
    from clustering.tasks import train_task

    due = Now() - RESEND_AFTER
    waiting = TrainingRun.objects.filter(status=TrainingRun.Status.PENDING, created_at__lt=due)
    waiting = waiting.filter(Q(resent_at__isnull=True) | Q(resent_at__lt=due))
    resent = []
    for run_id in waiting.values_list("id", flat=True):
        # Claimed or failed meanwhile: nothing to send.
        if not TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.PENDING).update(
            resent_at=Now()
        ):
            continue
        try:
            train_task.delay(run_id)
        except Exception as problem:  # kombu raises many kinds; beat tries again next time
            logger.warning("could not re-send run %s: %s", run_id, problem)
            continue
        logger.warning("run %s waited over a minute for a worker: its task was re-sent", run_id)
        resent.append(run_id)
    return resent


WORKER_SILENT = (
    "The worker training this run stopped responding (it may have been restarted or run out "
    "of memory). The previous model is still active; start the retrain again."
)
NO_WORKER = (
    "No worker picked up this run in time. Check that a Celery worker is running; the "
    "previous model is still active."
)


def _fail_all(runs, message: str) -> int:
    return runs.update(
        status=TrainingRun.Status.FAILED,
        in_flight=None,
        error=message,
        finished_at=Now(),
        step="Failed",
    )


def failure_message(problem: Exception, *, step: str = "", connection_lost: bool = False) -> str:
    if isinstance(problem, TrainingError | ModelFileError):
        return str(problem)
    if connection_lost:
        doing = f" while {step[:1].lower()}{step[1:]}" if step else ""
        return (
            f"The training lost its connection to the database{doing} "
            f"({type(problem).__name__}: {str(problem).strip()}). The database may have been "
            "restarted. The previous model is still active; start the retrain again."
        )[:2000]
    return (
        f"The training stopped because of an unexpected error ({type(problem).__name__}: "
        f"{problem}). The previous model is still active; an engineer can find the details "
        f"in the worker's log."
    )[:2000]


def training_run_write(
    *, run: TrainingRun, outcome: Outcome, stored, saved: list | None = None
) -> None:
    """Write clusters, assignments and statistics, then activate the run: all or nothing.
    A "compare" retrain's other candidates are written first, each as a run of its own
    (not activated); ``saved`` collects their model files, for clean-up on failure."""
    saved = [] if saved is None else saved
    with transaction.atomic():
        others = [
            _candidate_write(run=run, outcome=candidate, saved=saved)
            for candidate in outcome.candidates
        ]
        _run_results_write(run=run, outcome=outcome)
        _finish_run(run=run, outcome=outcome, stored=stored)
        if others or outcome.discarded:
            comparison = comparison_table(run=run, outcome=outcome, others=others)
            TrainingRun.objects.filter(id=run.id).update(comparison=comparison)
        run_trained.send(
            sender=TrainingRun,
            run_id=run.id,
            features=outcome.features,
            X=outcome.data.X,
            customer_pks=outcome.data.customer_pks,
            labels=outcome.labels,
        )
        answers = activation_requested.send(sender=TrainingRun, run_id=run.id)
        if all(answer is not False for _receiver, answer in answers):
            # A manual activation in progress goes first; this run then becomes the active one.
            run_activate(run_id=run.id, user=run.created_by)


def _run_results_write(*, run: TrainingRun, outcome: Outcome) -> None:
    segments = segments_for_clusters(run=run, outcome=outcome)
    clusters = clusters_create(run=run, outcome=outcome, segments=segments)
    cluster_ids = np.array([cluster.id for cluster in clusters], dtype=np.int64)
    assignments_write(
        run_id=run.id,
        customer_pks=outcome.data.customer_pks,
        cluster_ids=cluster_ids[outcome.labels],
        confidence=outcome.confidence,
        unusual=outcome.unusual,
    )


def _candidate_write(*, run: TrainingRun, outcome: Outcome, saved: list) -> TrainingRun:
    """Another algorithm of a compare retrain, as a finished run that is not active."""
    candidate = TrainingRun.objects.create(
        status=TrainingRun.Status.RUNNING,
        in_flight=None,
        features=list(outcome.features),
        features_auto=run.features_auto,
        missing=run.missing,
        log_requested=run.log_requested,
        k_requested=run.k_requested,
        k_min=run.k_min,
        k_max=run.k_max,
        created_by=run.created_by,
        started_at=run.started_at,
        algorithm_requested=outcome.algorithm,
        comparison_of=run,
    )
    stored = model_save(run_id=candidate.id, pipeline=outcome.pipeline)
    saved.append(stored)
    _run_results_write(run=candidate, outcome=outcome)
    _finish_run(run=candidate, outcome=outcome, stored=stored)
    return candidate


def comparison_table(*, run: TrainingRun, outcome: Outcome, others: list) -> dict:
    """The compare page's numbers: one row per algorithm, the rule and its pick."""
    rows = [_comparison_row(run.id, outcome, recommended=True)]
    for candidate_run, candidate in zip(others, outcome.candidates, strict=True):
        rows.append(_comparison_row(candidate_run.id, candidate, recommended=False))
    for dropped in outcome.discarded:
        rows.append(_comparison_row(None, dropped, recommended=False))
    order = list(algorithms.LABELS)
    rows.sort(key=lambda row: order.index(row["algorithm"]))
    return {
        "rule": algorithms.RECOMMENDATION_RULE,
        "recommended": outcome.algorithm,
        "candidates": rows,
        "ensemble_rule": algorithms.ENSEMBLE_RULE,
    }


def _comparison_row(run_id: int, outcome: Outcome, *, recommended: bool) -> dict:
    quality = outcome.quality
    bic = None
    if outcome.bic_by_k and outcome.k in outcome.sweep.k_values:
        bic = outcome.bic_by_k[outcome.sweep.k_values.index(outcome.k)]
    return {
        "algorithm": outcome.algorithm,
        "label": algorithms.LABELS[outcome.algorithm],
        "run_id": run_id,  # None: a consensus not kept (it did not beat its parts)
        "k": outcome.k,
        # As many places as the run's own silhouette: rounded twice, 0.547482 read 0.548 here
        # and 0.547 on the runs list.
        "silhouette": _finite(quality.silhouette, 6),
        "calinski_harabasz": _finite(quality.calinski_harabasz, 1),
        "davies_bouldin": _finite(quality.davies_bouldin, 3),
        "stability": _finite(outcome.stab.mean, 3),
        "stability_spread": _finite(outcome.stab.spread, 3),
        "bic": _finite(bic, 1),
        "noise_share": _finite(quality.noise_share, 4),
        "recommended": recommended,
    }


def _finite(value, digits: int):
    """A number for JSON (None for NaN or a missing value), rounded."""
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


def _finish_run(*, run: TrainingRun, outcome: Outcome, stored) -> None:
    sweep = outcome.sweep
    chosen = sweep.k_values.index(outcome.k) if outcome.k in sweep.k_values else None
    if outcome.silhouette is None and chosen is not None:
        outcome.silhouette = sweep.silhouette[chosen]
    stab, quality = outcome.stab, outcome.quality
    updated = TrainingRun.objects.filter(id=run.id, status=TrainingRun.Status.RUNNING).update(
        algorithm_requested=outcome.algorithm,
        stability_spread=_finite(stab.spread, 4) if stab else None,
        stability_refits=stab.refits if stab else None,
        stability_sample_size=stab.sample_size if stab else None,
        calinski_harabasz=_finite(quality.calinski_harabasz, 3) if quality else None,
        davies_bouldin=_finite(quality.davies_bouldin, 4) if quality else None,
        bic_by_k=[round(v, 2) for v in outcome.bic_by_k],
        covariance_type=outcome.covariance_type,
        noise_share=round(float(outcome.noise.mean()), 5) if outcome.has_noise else None,
        status=TrainingRun.Status.SUCCEEDED,
        in_flight=None,
        progress=100,
        step="Finished",
        finished_at=timezone.now(),
        k_values=list(sweep.k_values),
        inertia_by_k=[round(float(v), 4) for v in sweep.inertia],
        silhouette_by_k=[round(float(v), 5) for v in sweep.silhouette],
        chosen_k=outcome.k,
        silhouette=_finite(outcome.silhouette, 6),
        inertia=float(outcome.pipeline[-1].inertia_),
        stability=round(float(outcome.stability), 4),
        within_variance=outcome.sigma2,
        unusual_distance2=outcome.unusual_d2,
        algorithm=sweep.algorithm,
        silhouette_sample_size=sweep.silhouette_sample_size,
        customers_used=len(outcome.data.X),
        customers_excluded=outcome.data.excluded,
        feature_info=_feature_info(outcome),
        imputed={k: round(v, 4) for k, v in outcome.data.imputed.items()},
        missing_by_feature=outcome.data.missing_by_feature,
        log_features=[f for f, log in zip(outcome.features, outcome.prepared.log_mask) if log],
        outliers=int(outcome.prepared.outliers.sum()),
        min_segment_share=round(outcome.min_share, 5),
        sweep_sample_size=sweep.sweep_sample_size,
        population_means=_means(outcome.data.values, outcome.data.value_features),
        projection=projection_sample(outcome),
        timings=outcome.timings,
        model_file=stored.file_name,
        model_sha256=stored.sha256,
        library_versions=stored.library_versions,
    )
    if not updated:
        raise TrainingError("The run was stopped (marked failed) before it could be saved.")


def _means(values: np.ndarray, features: tuple[str, ...]) -> dict[str, float | None]:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature nobody in a segment has
        means = np.nanmean(values, axis=0) if len(values) else np.full(values.shape[1], np.nan)
    return {f: (None if np.isnan(m) else round(float(m), 3)) for f, m in zip(features, means)}


def projection_sample(outcome: Outcome) -> dict:
    """A 2-D PCA of the scaled features on at most PROJECTION_POINTS customers, for a chart."""
    rng = np.random.default_rng(settings.CLUSTERING_RANDOM_STATE)
    n = len(outcome.data.X)
    rows = (
        np.sort(rng.choice(n, PROJECTION_POINTS, replace=False))
        if n > PROJECTION_POINTS
        else slice(None)
    )
    scaled = engine.to_model_space(outcome.pipeline, outcome.data.X[rows])
    pca = PCA(n_components=2, random_state=0).fit(scaled)
    points = pca.transform(scaled)
    return {
        "x": np.round(points[:, 0], 3).tolist(),
        "y": np.round(points[:, 1], 3).tolist(),
        "cluster": outcome.labels[rows].astype(int).tolist(),
        "explained": [round(float(v), 4) for v in pca.explained_variance_ratio_],
    }


def _matches_with_active_run(outcome: Outcome, features: list[str]) -> dict[int, Segment]:
    """New cluster index -> the segment of the active run's cluster it continues.

    A segment continues only on the same features and as the same archetype: a persona
    found on spending cannot go on in a run without spending, and a "Loyal Customers"
    name on a cluster the engine now reads as mainstream would tell marketers the
    wrong story.
    """
    previous = TrainingRun.objects.filter(is_active=True).first()
    if previous is None or list(previous.features) != list(features):
        return {}
    old_clusters = list(
        previous.clusters.filter(is_noise=False).select_related("segment").order_by("index")
    )
    if not old_clusters:
        return {}
    # Compared where the new model sees customers (log scale where chosen, in sd).
    new_centroids = engine.centroids_sd(outcome.pipeline)
    old_original = np.array([[c.centroid[f] for f in features] for c in old_clusters])
    if not _recode_categories(old_original, previous, outcome):
        return {}  # a category of the old centres is gone: no fair comparison
    old_centroids = engine.to_model_space(outcome.pipeline, old_original)
    same_archetype = np.array(
        [[persona.archetype == c.archetype for c in old_clusters] for persona in outcome.names]
    )
    pairs = engine.match_centroids(
        old_centroids,
        new_centroids,
        max_distance=MATCH_MAX_DISTANCE,
        allowed=same_archetype,
    )
    return {new: old_clusters[old].segment for new, old in pairs.items()}


def _recode_categories(centres: np.ndarray, previous: TrainingRun, outcome: Outcome) -> bool:
    """Turn the previous run's category codes in ``centres`` into this run's (each run
    numbers its own categories); False when a category is no longer among them."""
    info = previous.feature_info or {}
    for key, values in outcome.data.category_values.items():
        column = outcome.features.index(key)
        old_values = info.get(key, {}).get("categories")
        if old_values is None:
            return False
        for row in centres:
            value = old_values[int(row[column])]
            if value not in values:
                return False
            row[column] = values.index(value)
    return True


def _unique_name(name: str, taken: set[str]) -> str:
    """``name``, or the next free number after it: "Potential Targets 3", never "... 2 2"."""
    root, _, suffix = name.rpartition(" ")
    if root and suffix.isdigit():
        base, number = root, int(suffix) + 1  # the engine already numbered it
    else:
        base, number = name, 2
    while name in taken:
        name, number = f"{base} {number}", number + 1
    return name


def segments_for_clusters(*, run: TrainingRun, outcome: Outcome) -> list[Segment]:
    """One segment per cluster: matched ones carry over, the others are reused or created."""
    matched = _matches_with_active_run(outcome, list(outcome.features))
    used = {segment.id for segment in matched.values()}
    segments: list[Segment | None] = []
    for index, persona in enumerate(outcome.names):
        segment = matched.get(index)
        if segment is None:
            # The same persona found again (on other features, or back after a gap), even
            # if a marketer renamed it meanwhile: its edited name and strategy carry over.
            segment = (
                Segment.objects.filter(archetype=persona.archetype)
                .exclude(id__in=used)
                .order_by(
                    Case(When(name=persona.name, then=0), default=1),
                    "-is_active",
                    "-updated_at",
                    "id",
                )
                .first()
            )
        if segment is not None:
            used.add(segment.id)
        segments.append(segment)
    # New segments last: each takes a colour that none of the run's other segments has.
    taken = set(Segment.objects.values_list("name", flat=True))
    held = list(Segment.objects.values_list("colour_index", flat=True))
    in_run = {segment.colour_index for segment in segments if segment is not None}
    for index, persona in enumerate(outcome.names):
        if segments[index] is None:
            strategy = naming.strategy_for(persona.archetype, reason=persona.reason)
            colour = palette.colour_for_new_segment(in_run=in_run, held=held)
            segments[index] = Segment.objects.create(
                name=_unique_name(persona.name, taken),
                archetype=persona.archetype,
                description=strategy.description,
                actions=list(strategy.actions),
                colour_index=colour,
            )
            taken.add(segments[index].name)
            in_run.add(colour)
            held.append(colour)
    return segments


def clusters_create(
    *, run: TrainingRun, outcome: Outcome, segments: list[Segment]
) -> list[Cluster]:
    """Clusters of the run with their centroid and statistics, in label order."""
    centroids = engine.centroids_original(outcome.pipeline)
    centroids_sd = engine.centroids_by_feature_sd(outcome.pipeline)
    total = len(outcome.labels)
    clusters = []
    for index, persona in enumerate(outcome.names):
        members = outcome.labels == index
        values = outcome.data.values[members]
        size = int(members.sum())
        clusters.append(
            Cluster(
                run=run,
                index=index,
                segment=segments[index],
                archetype=persona.archetype,
                reason=persona.reason[:300],
                centroid={
                    f: round(float(v), 4) for f, v in zip(outcome.features, centroids[index])
                },
                centroid_sd={
                    f: round(float(v), 4) for f, v in zip(outcome.features, centroids_sd[index])
                },
                size=size,
                share=size / total,
                means=_means(values, outcome.data.value_features),
                medians=_medians(values, outcome.data.value_features),
                sex_mix=_sex_mix(outcome.data.sex[members]),
                category_mix=_category_mix(outcome.data.categories, members),
                mean_confidence=float(outcome.confidence[members].mean()) if size else None,
                stability=_segment_stability(outcome, index),
            )
        )
    if outcome.has_noise:
        clusters.append(_unsegmented_cluster(run=run, outcome=outcome))
    return Cluster.objects.bulk_create(clusters)


def _feature_info(outcome: Outcome) -> dict[str, dict]:
    """The run's features as the catalogue described them; a categorical feature also keeps
    its values in code order (prediction answers only with these)."""
    info = {key: outcome.catalogue[key].snapshot() for key in outcome.features}
    for key, values in outcome.data.category_values.items():
        info[key]["categories"] = list(values)
    return info


def _segment_stability(outcome: Outcome, index: int) -> float | None:
    if outcome.stab is None or index >= len(outcome.stab.by_segment):
        return None
    return _finite(outcome.stab.by_segment[index], 4)


UNSEGMENTED = algorithms.UNSEGMENTED


def _unsegmented_cluster(*, run: TrainingRun, outcome: Outcome) -> Cluster:
    """HDBSCAN's customers in no dense group, under the one "Unsegmented" segment: shown
    as such, never named as a persona, without a strategy."""
    segment = Segment.objects.filter(archetype=UNSEGMENTED).first()
    if segment is None:
        segment = Segment.objects.create(
            name=_unique_name("Unsegmented", set(Segment.objects.values_list("name", flat=True))),
            archetype=UNSEGMENTED,
            description="Customers in no dense group: not a segment, so no strategy.",
            actions=[],
        )
    members = outcome.noise
    values = outcome.data.values[members]
    raw = outcome.data.X[members]
    centre = raw.mean(axis=0)
    centre_sd = engine.to_model_space(outcome.pipeline, raw).mean(axis=0)
    if (encoder := engine.encoder_of(outcome.pipeline)) is not None:
        centre_sd = encoder.collapse(centre_sd[None], fill=0.0)[0]
        for column in np.flatnonzero(encoder.categorical):  # the most common, not a mean
            codes = raw[:, column].astype(int)
            centre[column] = np.bincount(codes).argmax() if len(codes) else 0
    size = int(members.sum())
    return Cluster(
        run=run,
        index=outcome.k,
        segment=segment,
        archetype=UNSEGMENTED,
        reason="in no dense group of customers",
        centroid={f: round(float(v), 4) for f, v in zip(outcome.features, centre)},
        centroid_sd={f: round(float(v), 4) for f, v in zip(outcome.features, centre_sd)},
        size=size,
        share=size / len(outcome.labels),
        means=_means(values, outcome.data.value_features),
        medians=_medians(values, outcome.data.value_features),
        sex_mix=_sex_mix(outcome.data.sex[members]),
        category_mix=_category_mix(outcome.data.categories, members),
        mean_confidence=None,
        is_noise=True,
    )


def _medians(values: np.ndarray, features: tuple[str, ...]) -> dict[str, float | None]:
    result = {}
    for column, feature in enumerate(features):
        known = values[:, column][~np.isnan(values[:, column])]
        result[feature] = round(float(np.median(known)), 3) if len(known) else None
    return result


def _sex_mix(codes: np.ndarray) -> dict[str, float]:
    counts = np.bincount(codes.astype(np.int64), minlength=len(SEX_CODES))
    total = max(int(counts.sum()), 1)
    return {code: round(int(count) / total, 4) for code, count in zip(SEX_CODES, counts)}


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("run_len", ">i4"),
        ("run", ">i8"),
        ("customer_len", ">i4"),
        ("customer", ">i8"),
        ("cluster_len", ">i4"),
        ("cluster", ">i8"),
        ("confidence_len", ">i4"),
        ("confidence", ">f8"),
        ("unusual_len", ">i4"),
        ("unusual", "u1"),
    ]
)


def assignments_write(
    *,
    run_id: int,
    customer_pks: np.ndarray,
    cluster_ids: np.ndarray,
    confidence: np.ndarray,
    unusual: np.ndarray | None = None,
) -> None:
    """Insert one assignment per customer, in chunks (binary COPY on PostgreSQL)."""
    if unusual is None:
        unusual = np.zeros(len(customer_pks), dtype=bool)
    with connection.cursor() as cursor:
        for start in range(0, len(customer_pks), ASSIGNMENT_CHUNK):
            part = slice(start, start + ASSIGNMENT_CHUNK)
            assignments_write_chunk(
                cursor,
                run_id,
                customer_pks[part],
                cluster_ids[part],
                confidence[part],
                unusual[part],
            )


def assignments_write_chunk(cursor, run_id, customer_pks, cluster_ids, confidence, unusual):
    table = ClusterAssignment._meta.db_table
    columns = "run_id, customer_id, cluster_id, confidence, unusual"
    if connection.vendor == "postgresql":
        rows = np.zeros(len(customer_pks), dtype=_COPY_ROW)
        rows["fields"] = 5
        rows["run_len"] = rows["customer_len"] = rows["cluster_len"] = rows["confidence_len"] = 8
        rows["unusual_len"] = 1
        rows["run"], rows["customer"], rows["cluster"] = run_id, customer_pks, cluster_ids
        rows["confidence"] = confidence
        rows["unusual"] = unusual
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(_COPY_HEADER + rows.tobytes() + _COPY_TRAILER)
        return
    values = zip(
        [run_id] * len(customer_pks),
        customer_pks.tolist(),
        cluster_ids.tolist(),
        confidence.tolist(),
        np.asarray(unusual, dtype=bool).tolist(),
    )
    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)", list(values))


CATEGORY_MIX_TOP = 10


def _category_mix(categories: dict[str, Categories], members: np.ndarray) -> dict[str, list]:
    """Each categorical attribute's mix among a cluster's members."""
    mix = {}
    for key, category in categories.items():
        counts = np.bincount(category.codes[members] + 1, minlength=len(category.values) + 1)
        pairs = [(value, int(n)) for value, n in zip(category.values, counts[1:]) if n]
        mix[key] = _top_shares([*pairs, (None, int(counts[0]))])
    return mix


def _top_shares(pairs: list[tuple[str | None, int]]) -> list[list]:
    """[[value, share], ...], most common first; the rest as "other", unknown last."""
    total = sum(count for _value, count in pairs) or 1
    known = sorted((p for p in pairs if p[0] is not None), key=lambda p: (-p[1], str(p[0])))
    shown = [[str(value), round(count / total, 4)] for value, count in known[:CATEGORY_MIX_TOP]]
    rest = sum(count for _value, count in known[CATEGORY_MIX_TOP:])
    if rest:
        shown.append(["other", round(rest / total, 4)])
    unknown = sum(count for value, count in pairs if value is None)
    if unknown:
        shown.append(["unknown", round(unknown / total, 4)])
    return shown


# The PostgreSQL advisory lock every activation takes: activations take turns.
ACTIVATION_LOCK = 0x5E6_AC71


def _activation_turn() -> bool:
    """Wait for this transaction's turn to activate; False when another activation held it.

    On PostgreSQL an advisory lock held until the transaction ends (row locks alone let two
    activations see different "active" rows and deadlock or collide on the one-active-run
    constraint). SQLite's transactions take the database's write lock when they begin
    (``transaction_mode`` IMMEDIATE), so they already take turns.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ACTIVATION_LOCK])
        if cursor.fetchone()[0]:
            return True
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ACTIVATION_LOCK])
    return False


def run_activate(*, run_id: int, user=None, yield_to_others: bool = False) -> TrainingRun:
    """Make a succeeded run the active model (also a rollback to an earlier run).

    Activations take turns. With ``yield_to_others`` (a person's request) an activation that
    had to wait for another changes nothing and raises ActivationInProgress naming the run
    now active, so nobody overrides a colleague's choice without seeing it.
    """
    with transaction.atomic():
        if not _activation_turn() and yield_to_others:
            raise ActivationInProgress(
                TrainingRun.objects.filter(is_active=True).values_list("id", flat=True).first()
            )
        run = TrainingRun.objects.select_for_update().filter(id=run_id).first()
        if run is None:
            raise TrainingRun.DoesNotExist(f"There is no run {run_id}.")
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise TrainingError(f"Run {run.id} has not succeeded, so it cannot be activated.")
        if run.is_active:
            return run
        if run.assignments_pruned:
            raise TrainingError(
                f"Run {run.id} is too old: its customer assignments were pruned. Retrain instead."
            )
        previous_id = TrainingRun.objects.filter(is_active=True).values_list("id", flat=True)
        previous_id = previous_id.first()
        TrainingRun.objects.filter(is_active=True).update(is_active=False)
        TrainingRun.objects.filter(id=run.id).update(
            is_active=True,
            activated_at=timezone.now(),
            activated_by=user if user is not None and user.is_authenticated else None,
        )
        if previous_id is not None:
            _rewrite_site_strategies(run_id=run.id, previous_id=previous_id)
        # The audit trail keeps every activation (the run keeps only the last one).
        run_activated.send(
            sender=TrainingRun,
            run=run,
            previous_id=previous_id,
            user=user if user is not None and user.is_authenticated else None,
        )
        in_run = Cluster.objects.filter(run_id=run.id, segment_id=OuterRef("pk"))
        Segment.objects.update(is_active=Exists(in_run))
        transaction.on_commit(prediction_cache_clear)
    run.refresh_from_db()
    return run


def _rewrite_site_strategies(*, run_id: int, previous_id: int) -> None:
    """A strategy the site wrote for a segment without a ready-made persona quotes what set
    it apart (for example "age +1.8 sd"). When another run becomes the active one (a
    retrain, a rollback) and the segment's centre there differs, the site writes it again
    from that centre, but only while the text is still exactly what the site wrote for the
    run active until now: one a marketer edited stays theirs. Runs never activated (a
    compare's other candidates, a schedule's declined run) change no text."""
    before = {c.segment_id: c for c in Cluster.objects.filter(run_id=previous_id)}
    for cluster in Cluster.objects.filter(run_id=run_id).select_related("segment"):
        last = before.get(cluster.segment_id)
        if last is None:
            continue
        segment = cluster.segment
        written = naming.strategy_for(last.archetype, reason=last.reason)
        new = naming.strategy_for(cluster.archetype, reason=cluster.reason)
        current = (segment.description, list(segment.actions))
        if current != (written.description, list(written.actions)) or new == written:
            continue
        segment.description, segment.actions = new.description, list(new.actions)
        segment._written_by_training = True  # the audit's version: no person wrote it
        segment.save(update_fields=["description", "actions", "updated_at"])


def assignments_prune() -> int:
    """Delete assignments of all but the newest N succeeded runs (and the active one)."""
    keep = settings.CLUSTERING_KEEP_ASSIGNMENT_RUNS
    # A compare retrain counts once: its other algorithms' runs go with it.
    succeeded = TrainingRun.objects.filter(
        status=TrainingRun.Status.SUCCEEDED, assignments_pruned=False, comparison_of=None
    ).order_by("-finished_at", "-id")
    old_heads = [run.id for run in succeeded[keep:]]
    candidates = list(
        TrainingRun.objects.filter(Q(id__in=old_heads) | Q(comparison_of_id__in=old_heads))
        .filter(assignments_pruned=False, is_active=False)
        .values_list("id", flat=True)
    )
    if not candidates:
        return 0
    with transaction.atomic():
        # Locked and checked again: a run activated meanwhile keeps its assignments.
        old = list(
            TrainingRun.objects.select_for_update()
            .filter(id__in=candidates, is_active=False)
            .values_list("id", flat=True)
        )
        deleted, _ = ClusterAssignment.objects.filter(run_id__in=old).delete()
        TrainingRun.objects.filter(id__in=old).update(assignments_pruned=True)
    return deleted
