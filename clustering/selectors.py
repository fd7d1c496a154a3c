"""Reads for the clustering pages and services."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.core.paginator import Paginator
from django.db import connection

from clustering import engine
from clustering.comparisons import run_moves
from clustering.engine import FEATURES
from clustering.models import Cluster, ClusterAssignment, TrainingRun
from customers.csv_format import EXPORT_COLUMNS
from customers.models import Customer
from customers.services import EchoBuffer, format_number

SEX_CODES = tuple(Customer.Sex.values)
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
        # max: an import committed between the two reads must not make this negative.
        excluded=max(0, total - len(data)),
    )


def run_active(*, with_projection: bool = True) -> TrainingRun | None:
    runs = TrainingRun.objects.filter(is_active=True).select_related("created_by")
    return (runs if with_projection else runs.defer("projection")).first()


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


# --------------------------------------------------------------------------- pages

FEATURE_LABELS = {
    "age": ("Age", "years"),
    "annual_income": ("Annual income", "k"),
    "spending_score": ("Spending score", "/100"),
    "purchase_frequency": ("Purchases per year", "/year"),
}
SEX_LABELS = dict(Customer.Sex.choices)
# Colour-blind-safe palette (Okabe-Ito, then Tol): one colour per cluster index.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#332288",
    "#882255",
    "#117733",
    "#999933",
    "#AA4499",
    "#44AA99",
    "#888888",
    "#661100",
    "#6699CC",
    "#AA4466",
    "#4477AA",
    "#228833",
    "#EE6677",
)


@dataclass(frozen=True)
class FeatureRow:
    label: str
    unit: str
    value: float | None
    population: float | None

    @property
    def difference(self) -> float | None:
        if self.value is None or self.population in (None, 0):
            return None
        return (self.value - self.population) / abs(self.population)


@dataclass(frozen=True)
class SegmentCard:
    segment: object
    cluster: Cluster | None
    features: list[FeatureRow]
    sex_mix: list[tuple[str, float]]
    colour: str


def _card(segment, cluster: Cluster | None, population: dict) -> SegmentCard:
    features, sex_mix, colour = [], [], PALETTE[0]
    if cluster is not None:
        features = [
            FeatureRow(label, unit, cluster.means.get(name), population.get(name))
            for name, (label, unit) in FEATURE_LABELS.items()
        ]
        # A fixed order: PostgreSQL's jsonb does not keep the keys' order.
        sex_mix = [(SEX_LABELS[k], cluster.sex_mix[k]) for k in SEX_CODES if cluster.sex_mix.get(k)]
        colour = PALETTE[cluster.index % len(PALETTE)]
    return SegmentCard(segment, cluster, features, sex_mix, colour)


def segment_active_cluster(*, segment) -> Cluster | None:
    return (
        Cluster.objects.filter(segment=segment, run__is_active=True)
        .select_related("run")
        .defer("run__projection")
        .first()
    )


def segment_card(*, segment) -> SegmentCard:
    cluster = segment_active_cluster(segment=segment)
    population = cluster.run.population_means if cluster else {}
    return _card(segment, cluster, population)


def _chart_data(run: TrainingRun, clusters: list[Cluster]) -> dict:
    return {
        "k_values": run.k_values,
        "inertia": run.inertia_by_k,
        "silhouette": run.silhouette_by_k,
        "chosen_k": run.chosen_k,
        "segments": [
            {
                "index": c.index,
                "name": c.segment.name,
                "size": c.size,
                "share": c.share,
                "colour": PALETTE[c.index % len(PALETTE)],
            }
            for c in sorted(clusters, key=lambda c: c.index)
        ],
        "projection": run.projection,
    }


# What the "What do these numbers mean?" panel (clustering/_help.html) explains.
METRIC_HELP = {"k_rule": engine.K_RULE, "confidence_formula": engine.CONFIDENCE_FORMULA}


def dashboard_context() -> dict:
    """The active run, one card per segment and the chart data: nothing over all customers."""
    run = run_active()
    context = {
        "run": run,
        "training": run_in_flight() or TrainingRun.objects.defer("projection").first(),
        "features": tuple(run.features) if run else FEATURES,
        **METRIC_HELP,
    }
    if run is None:
        context["customer_count"] = Customer.objects.count()
        return context
    clusters = run_clusters(run=run)
    context.update(
        clusters=clusters,
        cards=[_card(c.segment, c, run.population_means) for c in clusters],
        verdict=engine.silhouette_verdict(run.silhouette) if run.silhouette is not None else None,
        charts=_chart_data(run, clusters),
    )
    return context


def runs_recent(limit: int = 100) -> list[TrainingRun]:
    return list(TrainingRun.objects.defer("projection").select_related("created_by")[:limit])


def run_detail_context(*, run: TrainingRun) -> dict:
    clusters = run_clusters(run=run) if run.status == TrainingRun.Status.SUCCEEDED else []
    per_k = [
        {"k": k, "inertia": inertia, "silhouette": silhouette, "chosen": k == run.chosen_k}
        for k, inertia, silhouette in zip(run.k_values, run.inertia_by_k, run.silhouette_by_k)
    ]
    return {
        "run": run,
        "clusters": clusters,
        "per_k": per_k,
        "verdict": engine.silhouette_verdict(run.silhouette)
        if run.silhouette is not None
        else None,
        "charts": _chart_data(run, clusters) if clusters else None,
        "other_runs": TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        .exclude(id=run.id)
        .only("id", "chosen_k", "created_at")[:20],
    }


def _run_or_none(value) -> TrainingRun | None:
    try:
        return TrainingRun.objects.defer("projection").get(
            id=int(value), status=TrainingRun.Status.SUCCEEDED
        )
    except (TypeError, ValueError, TrainingRun.DoesNotExist):
        return None


def run_comparison_context(first, second) -> dict:
    """How many customers moved from which segment (run A) to which (run B)."""
    run_a, run_b = _run_or_none(first), _run_or_none(second)
    context = {
        "run_a": run_a,
        "run_b": run_b,
        "runs": TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED).only(
            "id", "chosen_k", "created_at"
        )[:50],
    }
    if not run_a or not run_b or run_a.id == run_b.id:
        return context
    counts = run_moves(run_a=run_a, run_b=run_b)
    if counts is None:
        context["pruned"] = True
        return context
    clusters_a, clusters_b = run_clusters(run=run_a), run_clusters(run=run_b)
    rows = []
    for ca in clusters_a:
        cells = [counts.get((ca.id, cb.id), 0) for cb in clusters_b]
        rows.append({"cluster": ca, "cells": cells, "kept": sum(cells)})
    context.update(
        clusters_a=clusters_a,
        clusters_b=clusters_b,
        matrix=rows,
        same_segment=sum(
            counts.get((ca.id, cb.id), 0)
            for ca in clusters_a
            for cb in clusters_b
            if ca.segment_id == cb.segment_id
        ),
        in_both=sum(counts.values()),
    )
    return context


SORTS = {
    "confidence": "confidence",
    "-confidence": "-confidence",
    "customer": "customer__customer_id",
    "-customer": "-customer__customer_id",
    "age": "customer__age",
    "-age": "-customer__age",
    "income": "customer__annual_income",
    "-income": "-customer__annual_income",
    "spending": "customer__spending_score",
    "-spending": "-customer__spending_score",
    "frequency": "customer__purchase_frequency",
    "-frequency": "-customer__purchase_frequency",
}
MEMBER_COLUMNS = (
    ("customer", "Customer ID"),
    ("confidence", "Confidence"),
    ("age", "Age"),
    ("income", "Income (k)"),
    ("spending", "Spending score"),
    ("frequency", "Purchases per year"),
)
CONFIDENCE_FILTERS = {
    "very": (0.90, None),
    "confident": (0.70, 0.90),
    "moderate": (0.50, 0.70),
    "low": (None, 0.50),
}


def _members_queryset(cluster: Cluster, params) -> tuple:
    queryset = ClusterAssignment.objects.filter(cluster=cluster)
    filtered = False
    search = (params.get("q") or "").strip()
    if search:
        # No customer ID holds a NUL (PostgreSQL even refuses one in a query): nothing matches.
        queryset = (
            queryset.none()
            if "\x00" in search
            else queryset.filter(customer__customer_id__startswith=search)
        )
        filtered = True
    band = params.get("band") if params.get("band") in CONFIDENCE_FILTERS else ""
    if band:
        low, high = CONFIDENCE_FILTERS[band]
        if low is not None:
            queryset = queryset.filter(confidence__gte=low)
        if high is not None:
            queryset = queryset.filter(confidence__lt=high)
        filtered = True
    return queryset, filtered, search, band


def segment_members_context(*, segment, params) -> dict:
    """One page of a segment's members in the active run, searched, filtered and sorted."""
    cluster = segment_active_cluster(segment=segment)
    context = {"segment": segment, "cluster": cluster, "columns": MEMBER_COLUMNS}
    if cluster is None:
        return context
    queryset, filtered, search, band = _members_queryset(cluster, params)
    sort = params.get("sort") if params.get("sort") in SORTS else "-confidence"
    # Ties follow the main direction, so the confidence order is one index scan.
    tie_break = "-customer_id" if sort.startswith("-") else "customer_id"
    queryset = queryset.select_related("customer").order_by(SORTS[sort], tie_break)
    paginator = Paginator(queryset, 50)
    if not filtered:
        # The size is known from the run: no COUNT over a large segment.
        paginator.count = cluster.size
    page = paginator.get_page(params.get("page"))
    context.update(page=page, sort=sort, q=search, band=band, filtered=filtered)
    return context


def spreadsheet_safe(text: str) -> str:
    """Free text a marketer typed must not run as a formula when the file opens in Excel."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def segment_export_lines(*, cluster: Cluster, params) -> Iterator[str]:
    """Campaign-ready CSV lines of a segment's members, streamed in chunks."""
    writer = csv.writer(EchoBuffer())
    segment = cluster.segment
    name = spreadsheet_safe(segment.name)
    strategy = spreadsheet_safe(" | ".join([segment.description, *segment.actions]).strip(" |"))
    yield writer.writerow((*EXPORT_COLUMNS, "segment", "confidence", "band", "strategy"))
    queryset, _filtered, _search, _band = _members_queryset(cluster, params)
    rows = queryset.order_by("-confidence", "customer_id").values_list(
        "customer__customer_id",
        "customer__sex",
        "customer__age",
        "customer__annual_income",
        "customer__spending_score",
        "customer__purchase_frequency",
        "confidence",
    )
    for cid, sex, age, income, score, frequency, confidence in rows.iterator(chunk_size=5_000):
        yield writer.writerow(
            (
                spreadsheet_safe(cid),
                sex,
                age,
                format_number(income),
                score,
                format_number(frequency),
                name,
                f"{engine.confidence_rounded(confidence):.4f}",
                engine.confidence_band(confidence),
                strategy,
            )
        )
