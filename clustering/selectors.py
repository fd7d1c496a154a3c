"""Reads for the clustering pages and services."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection

from clustering.engine import FEATURES
from clustering.models import Cluster, TrainingRun
from customers.models import Customer

SEX_CODES = ("female", "male", "other", "unknown")
FETCH_ROWS = 50_000


@dataclass(frozen=True)
class FeatureMatrix:
    """Customers with every chosen feature known.

    ``values`` holds all of FEATURES (NaN where unknown) for statistics;
    ``X`` only the run's features, for the model.
    """

    customer_pks: np.ndarray
    values: np.ndarray
    X: np.ndarray
    sex: np.ndarray
    excluded: int


def customers_feature_matrix(*, features: list[str]) -> FeatureMatrix:
    """Every customer's features as float64, read in chunks without model instances."""
    table = Customer._meta.db_table
    complete = " AND ".join(f"{f} IS NOT NULL" for f in features)
    sex_case = " ".join(f"WHEN '{code}' THEN {i}" for i, code in enumerate(SEX_CODES))
    sql = (
        f"SELECT id, {', '.join(FEATURES)}, CASE sex {sex_case} ELSE 3 END "
        f"FROM {table} WHERE {complete} ORDER BY id"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        total = cursor.fetchone()[0]
        cursor.execute(sql)
        parts = []
        while rows := cursor.fetchmany(FETCH_ROWS):
            parts.append(np.array(rows, dtype=np.float64))
    data = np.concatenate(parts) if parts else np.empty((0, len(FEATURES) + 2))
    values = data[:, 1 : 1 + len(FEATURES)]
    chosen = [FEATURES.index(f) for f in features]
    return FeatureMatrix(
        customer_pks=data[:, 0].astype(np.int64),
        values=values,
        X=np.ascontiguousarray(values[:, chosen]),
        sex=data[:, -1].astype(np.int8),
        excluded=total - len(data),
    )


def run_active() -> TrainingRun | None:
    return TrainingRun.objects.filter(is_active=True).select_related("created_by").first()


def run_in_flight() -> TrainingRun | None:
    return TrainingRun.objects.filter(in_flight=True).first()


def run_clusters(*, run: TrainingRun) -> list[Cluster]:
    return list(run.clusters.select_related("segment").order_by("-size"))


def run_summary(*, run: TrainingRun) -> dict:
    """A run as plain data: the `train --json` output and the API's run detail."""
    clusters = run_clusters(run=run) if run.status == TrainingRun.Status.SUCCEEDED else []
    return {
        "run_id": run.id,
        "status": run.status,
        "is_active": run.is_active,
        "error": run.error or None,
        "features": run.features,
        "k": run.chosen_k,
        "k_requested": run.k_requested,
        "silhouette": run.silhouette,
        "inertia": run.inertia,
        "stability": run.stability,
        "customers_used": run.customers_used,
        "customers_excluded": run.customers_excluded,
        "algorithm": run.algorithm or None,
        "per_k": [
            {"k": k, "inertia": inertia, "silhouette": silhouette}
            for k, inertia, silhouette in zip(run.k_values, run.inertia_by_k, run.silhouette_by_k)
        ],
        "clusters": [
            {
                "segment": cluster.segment.name,
                "segment_id": cluster.segment_id,
                "archetype": cluster.archetype,
                "reason": cluster.reason,
                "size": cluster.size,
                "share": round(cluster.share, 4),
                "means": cluster.means,
                "strategy": {
                    "description": cluster.segment.description,
                    "actions": cluster.segment.actions,
                },
            }
            for cluster in clusters
        ],
        "timings": run.timings,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
