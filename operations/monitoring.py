"""Drift of the active run, measured on the database (the numbers are operations.drift's).

The baseline is written with the run (clustering.services.run_trained), from the very
arrays it was trained on. Measuring reads only the run's features of every customer (COPY
on PostgreSQL), places each customer with the run's model and compares.
"""

from __future__ import annotations

import io
import logging
import time
import zlib

import numpy as np
from django.db import connection, transaction
from django.db.models import Max

from clustering.algorithms import NOISE
from clustering.encoding import MISSING_CATEGORY
from clustering.model_store import model_load
from clustering.models import TrainingRun
from clustering.reading import customers_from, feature_sql
from customers.catalogue import Catalogue
from customers.models import Customer
from customers.selectors import catalogue_current
from operations import drift
from operations.models import DriftBaseline, DriftReport, Schedule, ScheduledRun

logger = logging.getLogger(__name__)
FETCH_ROWS = 50_000


def _pack(customer_pks: np.ndarray, labels: np.ndarray) -> bytes:
    """Sorted keys as differences (mostly 1) and labels, zlib level 1: half a megabyte and
    a few hundredths of a second for a million customers (savez_compressed took seconds)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        customer_pks_delta=np.diff(customer_pks.astype(np.int64), prepend=0),
        labels=labels.astype(np.int16),
    )
    return zlib.compress(buffer.getvalue(), 1)


def _unpack(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = zlib.decompress(bytes(data))
    except zlib.error:  # a baseline of the first version: savez_compressed of the keys
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as arrays:
            return arrays["customer_pks"], arrays["labels"]
    with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
        return np.cumsum(arrays["customer_pks_delta"]), arrays["labels"]


def baseline_store(
    *,
    run_id: int,
    features,
    X: np.ndarray,
    customer_pks: np.ndarray,
    labels: np.ndarray,
    from_training: bool = True,
) -> DriftBaseline:
    """Keep what drift compares with: decile bins and medians per feature, every cluster."""
    edges, shares, medians = {}, {}, {}
    categories = run_categories(run_id)
    for column, feature in enumerate(features):
        if feature in categories:  # the category shares are the bins; no median
            bins = drift.bins_categorical(X[:, column], len(categories[feature]))
        else:
            bins = drift.bins_fit(X[:, column])
        edges[feature] = [float(e) for e in bins.edges]
        shares[feature] = [float(s) for s in bins.shares]
        known = X[:, column][~np.isnan(X[:, column])]
        median = float(np.median(known)) if len(known) and feature not in categories else None
        medians[feature] = median
    order = np.argsort(customer_pks, kind="stable")
    baseline, _ = DriftBaseline.objects.update_or_create(
        run_id=run_id,
        defaults={
            "features": list(features),
            "edges": edges,
            "shares": shares,
            "medians": medians,
            "customers": len(customer_pks),
            "labels": _pack(customer_pks[order], labels[order]),
            "from_training": from_training,
        },
    )
    return baseline


def run_categories(run_id: int) -> dict[str, list[str]]:
    """The run's categorical features and their values in code order."""
    info = TrainingRun.objects.filter(id=run_id).values_list("feature_info", flat=True).first()
    return {key: f["categories"] for key, f in (info or {}).items() if "categories" in f}


def _category_code_sql(key: str, catalogue: Catalogue, values: list[str]) -> str:
    """A categorical attribute as the run's code; a category the run never saw reads as
    len(values) (drift's last bin), an unknown one as NULL."""
    from clustering.reading import _raw_sql

    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    raw = _raw_sql(key, catalogue)
    cases = " ".join(f"WHEN {raw} = {literal(v)} THEN {i}" for i, v in enumerate(values))
    return f"(CASE WHEN {raw} IS NULL THEN NULL {cases} ELSE {len(values)} END)"


def customers_read(
    *, features: list[str], catalogue: Catalogue, categories: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(customer keys ascending, their values of ``features``; NaN where unknown); a
    categorical feature of ``categories`` as the run's code (see _category_code_sql)."""
    categories = categories or {}
    values = [
        _category_code_sql(f, catalogue, categories[f])
        if f in categories
        else feature_sql(f, catalogue)
        for f in features
    ]
    if connection.vendor == "postgresql":
        return _read_binary_copy(values, catalogue)
    sql = f"SELECT c.id, {', '.join(values)} FROM {customers_from(catalogue)} ORDER BY c.id"
    parts = []
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(FETCH_ROWS):
            parts.append(np.array(rows, dtype=np.float64))
    data = np.concatenate(parts) if parts else np.empty((0, len(features) + 1))
    return data[:, 0].astype(np.int64), data[:, 1:]


_COPY_HEADER_BYTES = 19  # PGCOPY signature, flags, header extension length


def _read_binary_copy(values: list[str], catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Binary COPY with every value a float8 (unknown as NaN): rows of fixed width, which
    numpy reads in one go (a tenth of the time of parsing text)."""
    columns = ", ".join(f"COALESCE(({v})::float8, 'NaN'::float8)" for v in values)
    sql = f"SELECT c.id, {columns} FROM {customers_from(catalogue)} ORDER BY c.id"
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy,
    ):
        data = b"".join(bytes(block) for block in copy)
    row = np.dtype(
        [("count", ">i2"), ("id_len", ">i4"), ("id", ">i8")]
        + [item for i in range(len(values)) for item in ((f"l{i}", ">i4"), (f"v{i}", ">f8"))]
    )
    body = data[_COPY_HEADER_BYTES : len(data) - 2]  # the trailer is a -1 field count
    rows = np.frombuffer(body, dtype=row)
    X = np.empty((len(rows), len(values)))
    for i in range(len(values)):
        X[:, i] = rows[f"v{i}"]
    return rows["id"].astype(np.int64), X


def _apply_missing_rule(run: TrainingRun, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(usable rows, values) under the run's missing-value rule: median-filled
    features get the run's medians (a categorical one its "(missing)" category); other
    rows with a gap are left out."""
    X = X.copy()
    categories = run_categories(run.id)
    for column, feature in enumerate(run.features):
        if feature in (run.imputed or {}):
            X[np.isnan(X[:, column]), column] = run.imputed[feature]
        elif MISSING_CATEGORY in categories.get(feature, ()):
            X[np.isnan(X[:, column]), column] = categories[feature].index(MISSING_CATEGORY)
    return ~np.isnan(X).any(axis=1), X


def _placeable(run: TrainingRun, X: np.ndarray) -> np.ndarray:
    """Rows the model can place: none of a category it never saw (drift counts those)."""
    ok = np.ones(len(X), dtype=bool)
    categories = run_categories(run.id)
    for column, feature in enumerate(run.features):
        if feature in categories:
            ok &= X[:, column] < len(categories[feature])
    return ok


def baseline_for(run: TrainingRun) -> DriftBaseline:
    """The run's baseline; for a run trained before baselines were kept, the customers as
    they are now (drift is then measured from today)."""
    baseline = DriftBaseline.objects.filter(run=run).first()
    if baseline is not None:
        return baseline
    pks, X = customers_read(
        features=list(run.features),
        catalogue=catalogue_current(),
        categories=run_categories(run.id),
    )
    keep, X = _apply_missing_rule(run, X)
    keep &= _placeable(run, X)
    labels = _clusters_now(run, X[keep])
    return baseline_store(
        run_id=run.id,
        features=run.features,
        X=X[keep],
        customer_pks=pks[keep],
        labels=labels,
        from_training=False,
    )


def _model(run: TrainingRun):
    return model_load(file_name=run.model_file, sha256=run.model_sha256)


def _clusters_now(run: TrainingRun, X: np.ndarray) -> np.ndarray:
    """Each customer's cluster index as training stores it: the model answers NOISE for
    HDBSCAN's Unsegmented customers, training gives them the index of the Unsegmented
    cluster, and the two must agree or every Unsegmented customer counts as moved."""
    labels = _model(run).predict(X)
    noise_index = run.clusters.filter(is_noise=True).values_list("index", flat=True).first()
    if noise_index is not None:
        labels = np.where(labels == NOISE, noise_index, labels)
    return labels


def drift_measure(*, run: TrainingRun | None = None) -> DriftReport | None:
    """Measure the active run's drift now and keep the report (None without a model)."""
    run = run or TrainingRun.objects.filter(is_active=True).first()
    if run is None:
        return None
    started = time.perf_counter()
    baseline = baseline_for(run)
    features = list(baseline.features)
    categories = run_categories(run.id)
    pks, X = customers_read(features=features, catalogue=catalogue_current(), categories=categories)
    keep, X = _apply_missing_rule(run, X)
    per_feature = [
        drift.feature_drift(
            feature,
            drift.Bins(np.array(baseline.edges[feature]), np.array(baseline.shares[feature])),
            baseline.medians.get(feature),
            X[keep, column],
            categorical=feature in categories,
        )
        for column, feature in enumerate(features)
    ]
    pks_then, labels_then = _unpack(baseline.labels)
    placed = keep & _placeable(run, X)  # a category the model never saw is in the PSI only
    labels_now = _clusters_now(run, X[placed]) if placed.any() else np.empty(0, dtype=np.int16)
    changes = drift.segment_changes(pks_then, labels_then, pks[placed], labels_now)
    per_feature.sort(key=lambda f: -f.psi)
    with transaction.atomic():
        return DriftReport.objects.create(
            run=run,
            features=[_feature_json(f, run) for f in per_feature],
            max_psi=round(per_feature[0].psi, 4) if per_feature else 0.0,
            level=drift.overall_level(per_feature, changes),
            compared=changes.compared,
            changed=changes.changed,
            new_customers=changes.new,
            gone_customers=changes.gone,
            customers_now=int(keep.sum()),
            seconds=round(time.perf_counter() - started, 3),
        )


def _feature_json(item: drift.FeatureDrift, run: TrainingRun) -> dict:
    label = (run.feature_info or {}).get(item.feature, {}).get("label") or item.feature
    return {
        "feature": item.feature,
        "label": label,
        "psi": round(item.psi, 4),
        "level": item.level,
        "median_then": item.median_then,
        "median_now": item.median_now,
    }


def drift_changed_since_report(run: TrainingRun) -> bool:
    """Whether a customer was added or changed after the run's latest report (or the run
    has none): one indexed MAX query."""
    report = DriftReport.objects.filter(run=run).first()
    if report is None:
        return True
    latest = Customer.objects.aggregate(latest=Max("updated_at"))["latest"]
    return latest is not None and latest > report.created_at


def drift_check(*, only_if_changed: bool = False) -> DriftReport | None:
    """Measure the active run's drift; tell the managers when it is large; start the
    first schedule whose drift threshold it passes (once per active run)."""
    from operations.notifications import notify_drift
    from operations.schedules import schedule_fire

    run = TrainingRun.objects.filter(is_active=True).first()
    if run is None or (only_if_changed and not drift_changed_since_report(run)):
        return None
    report = drift_measure(run=run)
    if report.level == drift.LARGE:
        notify_drift(report)
    for schedule in schedules_due_for_drift(report):
        schedule_fire(schedule_id=schedule.id, reason=ScheduledRun.Reason.DRIFT)
        break  # one training at a time: the first schedule's run answers the drift
    return report


def schedules_due_for_drift(report: DriftReport) -> list[Schedule]:
    """Enabled schedules whose PSI threshold the report passes and that have not already
    retrained for drift since the active run was activated."""
    since = report.run.activated_at or report.run.finished_at
    answered = ScheduledRun.objects.filter(reason=ScheduledRun.Reason.DRIFT)
    if since is not None:
        answered = answered.filter(created_at__gte=since)
    return list(
        Schedule.objects.filter(enabled=True, drift_psi_threshold__lte=report.max_psi)
        .exclude(id__in=answered.values("schedule_id"))
        .order_by("id")
    )
