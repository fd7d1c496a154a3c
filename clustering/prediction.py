"""Place customers in the active run's segments.

Each process keeps the active model (the fitted numbers and the segments'
current names and strategies) for PREDICTION_CACHE_SECONDS, then checks the
database again; this process's own changes (activating a run, editing a
segment) clear it at once. Every answer comes from exactly one run: the run,
its pipeline and its segments are read together.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings

from clustering import engine
from clustering.model_store import model_load
from clustering.models import Cluster
from customers.catalogue import BUILT_IN_CATALOGUE, Feature

MODEL_UNAVAILABLE = (
    "The active model cannot be loaded (its file is missing or altered). An administrator "
    "must retrain, or activate another run."
)


class NoActiveModel(Exception):
    """No run has been trained and activated yet."""


@dataclass(frozen=True)
class SegmentInfo:
    id: int
    name: str
    archetype: str
    description: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class ActiveModel:
    run_id: int
    features: tuple[str, ...]
    # The features as the run trained on them (label, range, whole number or not).
    definitions: tuple[Feature, ...]
    sigma2: float
    pipeline: object
    compact: engine.CompactModel
    segments: tuple[SegmentInfo, ...]  # by cluster index


@dataclass(frozen=True)
class Prediction:
    run_id: int
    segment: SegmentInfo
    confidence: float
    band: str
    runner_up: SegmentInfo
    runner_up_probability: float
    explanation: tuple[engine.FeatureComparison, ...]
    # Far from every segment: the segment is only the nearest guess (check the values).
    unusual: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # feature key -> label


_lock = threading.Lock()
_pipelines: dict[tuple[int, str], object] = {}
_active: dict[str, tuple[float, ActiveModel]] = {}


def _pipeline(run_id: int, file_name: str, sha256: str):
    key = (run_id, sha256)
    with _lock:
        if key not in _pipelines:
            pipeline = model_load(file_name=file_name, sha256=sha256)
            _pipelines.clear()  # one model per process: the active one
            _pipelines[key] = pipeline
        return _pipelines[key]


def cache_clear(*, files: bool = False) -> None:
    """Forget this process's active model (after an activation or a segment edit);
    ``files`` also forgets loaded model files, so the next use reads and checks them."""
    _active.clear()
    if files:
        with _lock:
            _pipelines.clear()


def _load_active() -> ActiveModel:
    rows = list(
        Cluster.objects.filter(run__is_active=True)
        .order_by("index")
        .values_list(
            "run_id",
            "run__features",
            "run__feature_info",
            "run__within_variance",
            "run__unusual_distance2",
            "run__model_file",
            "run__model_sha256",
            "archetype",
            "segment_id",
            "segment__name",
            "segment__description",
            "segment__actions",
        )
    )
    if not rows:
        raise NoActiveModel("No segmentation has been trained yet.")
    run_id, features, feature_info, sigma2, unusual_d2, model_file, sha256 = rows[0][:7]
    segments = tuple(
        SegmentInfo(segment_id, name, archetype, description, tuple(actions))
        for *_run, archetype, segment_id, name, description, actions in rows
    )
    pipeline = _pipeline(run_id, model_file, sha256)
    compact = engine.CompactModel.from_pipeline(pipeline, sigma2, unusual_d2)
    definitions = feature_definitions(features, feature_info)
    return ActiveModel(run_id, tuple(features), definitions, sigma2, pipeline, compact, segments)


def feature_definitions(features, feature_info: dict | None) -> tuple[Feature, ...]:
    """The run's features as it saved them; a run trained before it saved them reads the
    built-in catalogue."""
    info = feature_info or {}
    return tuple(
        _definition(info[key]) if key in info else BUILT_IN_CATALOGUE[key] for key in features
    )


def _definition(snapshot: dict) -> Feature:
    """A categorical feature answers with the run's own categories (its codes' order)."""
    if "categories" in snapshot:
        snapshot = {**snapshot, "choices": [[v, v] for v in snapshot["categories"]]}
    return Feature.from_snapshot(snapshot)


class UnknownCategory(ValueError):
    """A value of a categorical feature the run never saw (a 400, naming the field)."""

    def __init__(self, feature: Feature, value) -> None:
        super().__init__(category_problem(feature, value))
        self.feature = feature


def category_problem(feature: Feature, value) -> str:
    known = ", ".join(code for code, _label in feature.choices)
    return f"{feature.label}: {value!r} is not a category this model knows; use one of: {known}."


def model_value(feature: Feature, value) -> float:
    """A row's value as the model's raw column: a number, or a category's code."""
    if feature.is_numeric:
        return float(value)
    codes = [code for code, _label in feature.choices]
    if value not in codes:
        raise UnknownCategory(feature, value)
    return float(codes.index(value))


def model_active() -> ActiveModel:
    """The active run with its model and segment texts, cached briefly per process."""
    cached = _active.get("model")
    now = time.monotonic()
    if cached and now < cached[0]:
        return cached[1]
    model = _load_active()
    _active["model"] = (now + settings.PREDICTION_CACHE_SECONDS, model)
    return model


def predict_many(
    rows: list[dict[str, float]], *, model: ActiveModel | None = None
) -> list[Prediction]:
    """Predict a segment for each row (a dict with at least the run's features)."""
    model = model or model_active()
    X = np.array(
        [[model_value(d, row[d.key]) for d in model.definitions] for row in rows],
        dtype=np.float64,
    )
    scores = model.compact.score(X)
    labels = {feature.key: feature.label for feature in model.definitions}
    predictions = []
    for i in range(len(rows)):
        cluster, runner_up = int(scores.cluster[i]), int(scores.runner_up[i])
        confidence = float(scores.confidence[i])
        predictions.append(
            Prediction(
                run_id=model.run_id,
                segment=model.segments[cluster],
                confidence=confidence,
                band=engine.confidence_band(confidence),
                runner_up=model.segments[runner_up],
                runner_up_probability=float(scores.runner_up_probability[i]),
                explanation=_explained(model, X[i], cluster),
                unusual=bool(scores.unusual[i]),
                labels=labels,
            )
        )
    return predictions


def _explained(model: ActiveModel, x: np.ndarray, cluster: int) -> tuple:
    """The customer against the segment centre; a categorical feature reads as the
    customer's category next to the segment's most common one."""
    items = model.compact.explain(x, cluster, model.features)
    for i, definition in enumerate(model.definitions):
        if not definition.is_numeric:
            codes = [code for code, _label in definition.choices]
            item = items[i]
            items[i] = replace(
                item,
                value=codes[int(item.value)],
                centroid_value=codes[int(item.centroid_value)],
            )
    return tuple(items)


def predict_one(row: dict[str, float]) -> Prediction:
    return predict_many([row])[0]
