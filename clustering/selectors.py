"""Reads for the clustering pages and services."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import F

from clustering import engine
from clustering.bands import (
    CONFIDENCE_BANDS,
    SILHOUETTE_BANDS,
    STABILITY_BANDS,
    band_range,
    describe_bands,
)
from clustering.comparisons import run_moves
from clustering.models import Cluster, ClusterAssignment, TrainingRun
from clustering.reading import SEX_CODES
from customers.catalogue import SOURCE_FIELD, Catalogue, Feature
from customers.models import Customer
from customers.selectors import catalogue_current
from customers.services import (
    FIELDS as CUSTOMER_FIELDS,
)
from customers.services import (
    EchoBuffer,
    export_columns,
    format_value,
    spreadsheet_safe,
)


def active_run_features() -> tuple[str, ...]:
    """The features the active model uses (none without one)."""
    features = TrainingRun.objects.filter(is_active=True).values_list("features", flat=True)
    return tuple(features.first() or ())


def run_active(*, with_projection: bool = True) -> TrainingRun | None:
    runs = TrainingRun.objects.filter(is_active=True).select_related("created_by")
    return (runs if with_projection else runs.defer("projection")).first()


def run_in_flight() -> TrainingRun | None:
    return TrainingRun.objects.filter(in_flight=True).first()


def run_clusters(*, run: TrainingRun) -> list[Cluster]:
    return list(run.clusters.select_related("segment").order_by("-size"))


def _verdict_json(run: TrainingRun) -> dict | None:
    if run.silhouette is None:
        return None
    verdict = engine.silhouette_verdict(run.silhouette)
    return {"band": verdict.band, "text": verdict.text}


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
        "verdict": _verdict_json(run),
        "customers_used": run.customers_used,
        "customers_excluded": run.customers_excluded,
        "missing": run.missing,
        "imputed": run.imputed,
        "log_features": run.log_features,
        "outliers": run.outliers,
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
    in_model: bool = False

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
    # Categorical attributes: (label, [(value, share), ...]).
    mixes: list[tuple[str, list]] = ()


def run_catalogue(run: TrainingRun, catalogue: Catalogue | None = None) -> Catalogue:
    """The catalogue as the run saw it: its own features as they were when it trained,
    then the other features of the catalogue now."""
    catalogue = catalogue or catalogue_current()
    own = [Feature.from_snapshot(data) for data in (run.feature_info or {}).values()]
    own_keys = {f.key for f in own}
    return Catalogue(tuple(own) + tuple(f for f in catalogue if f.key not in own_keys))


def _card(segment, cluster: Cluster | None, run: TrainingRun | None, catalogue) -> SegmentCard:
    if cluster is None or run is None:
        return SegmentCard(segment, None, [], [], PALETTE[0])
    population = run.population_means
    features = [
        FeatureRow(f.label, f.unit, cluster.means.get(f.key), population.get(f.key), in_model)
        for in_model, f in _card_features(run, catalogue)
        if f.key in population
    ]
    # A fixed order: PostgreSQL's jsonb does not keep the keys' order.
    sex_mix = [(SEX_LABELS[k], cluster.sex_mix[k]) for k in SEX_CODES if cluster.sex_mix.get(k)]
    if [code for code, share in cluster.sex_mix.items() if share] == ["unknown"]:
        sex_mix = []  # a file without sex: nothing to show
    mixes = [
        (catalogue[key].label if key in catalogue else key, shares)
        for key, shares in sorted(cluster.category_mix.items())
    ]
    colour = PALETTE[cluster.index % len(PALETTE)]
    return SegmentCard(segment, cluster, features, sex_mix, colour, mixes)


def _card_features(run: TrainingRun, catalogue: Catalogue) -> list[tuple[bool, Feature]]:
    """The run's features first (they define the segments), then the other numbers."""
    own = [catalogue[key] for key in run.features if key in catalogue]
    others = [f for f in catalogue.numeric() if f.key not in run.features]
    return [(True, f) for f in own] + [(False, f) for f in others]


def segment_active_cluster(*, segment) -> Cluster | None:
    return (
        Cluster.objects.filter(segment=segment, run__is_active=True)
        .select_related("run")
        .defer("run__projection")
        .first()
    )


def segment_card(*, segment) -> SegmentCard:
    cluster = segment_active_cluster(segment=segment)
    run = cluster.run if cluster else None
    catalogue = run_catalogue(run) if run else None
    return _card(segment, cluster, run, catalogue)


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
METRIC_HELP = {
    "k_rule": engine.K_RULE,
    "confidence_formula": engine.CONFIDENCE_FORMULA,
    "silhouette_bands": describe_bands(SILHOUETTE_BANDS) + " (no clear segments).",
    "stability_bands": describe_bands(STABILITY_BANDS) + ".",
    "confidence_bands": describe_bands(CONFIDENCE_BANDS, percent=True) + " (between segments).",
}


def dashboard_context() -> dict:
    """The active run, one card per segment and the chart data: nothing over all customers."""
    run = run_active()
    context = {
        "run": run,
        "training": run_in_flight() or TrainingRun.objects.defer("projection").first(),
        "features": tuple(run.features) if run else (),
        **METRIC_HELP,
    }
    if run is None:
        context["customer_count"] = Customer.objects.count()
        return context
    clusters = run_clusters(run=run)
    catalogue = run_catalogue(run)
    labels = {f.key: f.label for f in catalogue}
    context.update(
        feature_labels=labels,
        coverage=run_coverage(run, labels),
        clusters=clusters,
        cards=[_card(c.segment, c, run, catalogue) for c in clusters],
        catalogue=catalogue,
        verdict=engine.silhouette_verdict(run.silhouette) if run.silhouette is not None else None,
        charts=_chart_data(run, clusters),
    )
    return context


def runs_recent(limit: int = 100) -> list[TrainingRun]:
    return list(TrainingRun.objects.defer("projection").select_related("created_by")[:limit])


def _count(n: int, noun: str = "customer") -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _and(words: list[str], joiner: str = "and") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {joiner} {words[-1]}"


def run_coverage(run: TrainingRun, labels: dict[str, str]) -> str:
    """One plain sentence: who is in no segment and why, who was far outside the rest,
    what was filled in, what was read on a log scale ("" when all customers simply fit)."""
    if not (run.customers_excluded or run.outliers or run.imputed):
        return ""
    parts = []
    if run.customers_excluded:
        missing = [
            f"{labels.get(key, key)} ({_count(n)})"
            for key, n in run.missing_by_feature.items()
            if n and key not in run.imputed
        ]
        verb = "is" if run.customers_excluded == 1 else "are"
        parts.append(
            f"{_count(run.customers_excluded)} {verb} in no segment because "
            f"{'it has' if run.customers_excluded == 1 else 'they have'} no value for "
            + _and(missing or ["a chosen feature"], "or")
        )
    if run.imputed:
        medians = [f"{labels.get(k, k)} {v:,.1f}" for k, v in run.imputed.items()]
        parts.append(
            "customers without "
            + _and([labels.get(k, k) for k in run.imputed], "or")
            + f" got the median of the other customers instead ({', '.join(medians)})"
        )
    if run.outliers:
        were = "was" if run.outliers == 1 else "were"
        parts.append(
            f"{_count(run.outliers)} far outside the rest {were} not used to fit the segment "
            f"centres, but {'is' if run.outliers == 1 else 'are'} still assigned to the "
            "nearest segment and flagged unusual"
        )
    if run.log_features:
        were = "was" if len(run.log_features) == 1 else "were"
        logged = _and([labels.get(k, k) for k in run.log_features])
        parts.append(f"{logged} {were} read on a log scale")
    sentence = "; ".join(parts) + "."
    return sentence[:1].upper() + sentence[1:]


def run_detail_context(*, run: TrainingRun) -> dict:
    clusters = run_clusters(run=run) if run.status == TrainingRun.Status.SUCCEEDED else []
    per_k = [
        {"k": k, "inertia": inertia, "silhouette": silhouette, "chosen": k == run.chosen_k}
        for k, inertia, silhouette in zip(run.k_values, run.inertia_by_k, run.silhouette_by_k)
    ]
    labels = {f.key: f.label for f in run_catalogue(run)}
    return {
        "run": run,
        "clusters": clusters,
        "per_k": per_k,
        "feature_labels": labels,
        "coverage": run_coverage(run, labels) if clusters else "",
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


# Sort keys of the members table beside the feature keys (old links keep working).
SORT_ALIASES = {
    "customer": "customer_id",
    "income": "annual_income",
    "spending": "spending_score",
    "frequency": "purchase_frequency",
}
# The member table's confidence filter: one choice per band.
CONFIDENCE_FILTERS = {band.key: band_range(CONFIDENCE_BANDS, band) for band in CONFIDENCE_BANDS}


@dataclass(frozen=True)
class MemberColumn:
    key: str
    label: str
    feature: Feature | None = None

    def value(self, customer: Customer):
        if self.feature is None:
            return getattr(customer, self.key)
        if self.feature.source == SOURCE_FIELD:
            value = getattr(customer, self.key)
        else:
            value = (customer.attributes or {}).get(self.key)
        # A category with fixed codes reads as its label ("female" -> "Female").
        return dict(self.feature.choices).get(value, value) if self.feature.choices else value


def member_columns(run: TrainingRun, catalogue: Catalogue) -> list[MemberColumn]:
    """Customer ID, confidence, the run's features, then every other catalogue feature."""
    features = [f for _in_model, f in _card_features(run, catalogue)]
    features += [f for f in catalogue.categorical()]
    return [
        MemberColumn("customer_id", "Customer ID"),
        MemberColumn("confidence", "Confidence"),
        *(MemberColumn(f.key, f.label, f) for f in features),
    ]


def _order_by(sort: str, columns: list[MemberColumn]):
    """The ORDER BY of a sort key ("-annual_income"), or None when it is not a column."""
    descending = sort.startswith("-")
    key = SORT_ALIASES.get(sort.lstrip("-"), sort.lstrip("-"))
    column = next((c for c in columns if c.key == key), None)
    if column is None:
        return None
    if key == "confidence":
        expression = F("confidence")
    elif column.feature is None or column.feature.source == SOURCE_FIELD:
        expression = F(f"customer__{key}")
    else:
        expression = F(f"customer__attributes__{key}")
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)


def _members_queryset(cluster: Cluster, params) -> tuple:
    queryset = ClusterAssignment.objects.filter(cluster=cluster)
    filtered = False
    search = (params.get("q") or "").strip()
    if search:
        # No customer ID holds a NUL (PostgreSQL even refuses one in a query): nothing matches.
        queryset = (
            queryset.none()
            if "\x00" in search
            else queryset.filter(customer__customer_id__icontains=search)
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
    context = {"segment": segment, "cluster": cluster}
    if cluster is None:
        return context
    columns = member_columns(cluster.run, run_catalogue(cluster.run))
    queryset, filtered, search, band = _members_queryset(cluster, params)
    sort = params.get("sort") or "-confidence"
    order = _order_by(sort, columns)
    if order is None:
        sort, order = "-confidence", F("confidence").desc()
    # Ties follow the main direction, so the confidence order is one index scan.
    tie_break = "-customer_id" if sort.startswith("-") else "customer_id"
    queryset = queryset.select_related("customer").order_by(order, tie_break)
    paginator = Paginator(queryset, 50)
    if not filtered:
        # The size is known from the run: no COUNT over a large segment.
        paginator.count = cluster.size
    page = paginator.get_page(params.get("page"))
    rows = [
        {"assignment": a, "cells": [c.value(a.customer) for c in columns[2:]]}
        for a in page.object_list
    ]
    context.update(
        page=page, rows=rows, columns=columns, sort=sort, q=search, band=band, filtered=filtered
    )
    return context


def segment_export_lines(*, cluster: Cluster, params) -> Iterator[str]:
    """Campaign-ready CSV lines of a segment's members, streamed in chunks."""
    writer = csv.writer(EchoBuffer())
    segment = cluster.segment
    name = spreadsheet_safe(segment.name)
    strategy = spreadsheet_safe(" | ".join([segment.description, *segment.actions]).strip(" |"))
    columns = export_columns()
    yield writer.writerow((*columns, "segment", "confidence", "band", "strategy"))
    built_in = [c for c in columns if c in CUSTOMER_FIELDS]
    attributes = [c for c in columns if c not in CUSTOMER_FIELDS]
    queryset, _filtered, _search, _band = _members_queryset(cluster, params)
    rows = queryset.order_by("-confidence", "customer_id").values_list(
        *(f"customer__{c}" for c in built_in), "customer__attributes", "confidence"
    )
    for *values, extra, confidence in rows.iterator(chunk_size=5_000):
        extra = extra or {}
        cells = [format_value(v) for v in values] + [format_value(extra.get(a)) for a in attributes]
        yield writer.writerow(
            (
                spreadsheet_safe(cells[0]),
                *(spreadsheet_safe(cell) for cell in cells[1:]),
                name,
                f"{engine.confidence_rounded(confidence):.4f}",
                engine.confidence_band(confidence),
                strategy,
            )
        )
