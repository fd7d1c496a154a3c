"""Reads for the clustering pages and services."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import F, FloatField, Q, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, NullIf

from clustering import algorithms, engine
from clustering.bands import (
    CONFIDENCE_BANDS,
    SILHOUETTE_BANDS,
    STABILITY_BANDS,
    band_for,
    band_range,
    describe_bands,
)
from clustering.comparisons import run_moves
from clustering.models import (
    SEGMENT_STRATEGY_EXPORT_MAX_LENGTH,
    Cluster,
    ClusterAssignment,
    Segment,
    TrainingRun,
)
from clustering.palette import CHART_LINES, SegmentColour
from clustering.reading import SEX_CODES
from customers.catalogue import SOURCE_FIELD, SOURCE_PURCHASES, Catalogue, Feature
from customers.csv_format import Invalid, parse_number
from customers.models import Customer
from customers.selectors import catalogue_current
from customers.services import (
    FIELDS as CUSTOMER_FIELDS,
)
from customers.services import SafeCsvWriter, export_columns
from purchases.selectors import (
    RFM_MEMBER_COLUMNS,
    group_name,
    rfm_exists,
    rfm_export_columns,
    rfm_value,
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
    return list(run.clusters.select_related("segment").order_by("-size", "index"))


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
        # Issue 15: the algorithm, the spread of the stability refits, separation metrics,
        # the mixture's BIC per K, the Unsegmented share and a compare retrain's table.
        "algorithm_requested": run.algorithm_requested,
        "stability_spread": run.stability_spread,
        "stability_refits": run.stability_refits,
        "calinski_harabasz": run.calinski_harabasz,
        "davies_bouldin": run.davies_bouldin,
        "bic_by_k": run.bic_by_k,
        "noise_share": run.noise_share,
        "comparison_of": run.comparison_of_id,
        "comparison": run.comparison or None,
        "verdict": _verdict_json(run),
        "customers_used": run.customers_used,
        "customers_excluded": run.customers_excluded,
        "missing": run.missing,
        "imputed": run.imputed,
        "log_features": run.log_features,
        "outliers": run.outliers,
        "algorithm": run.algorithm or None,
        # Above 100,000 customers the sweep ran on a sample: per_k's inertia is scaled to the
        # customers the final model was fitted on (the scale of "inertia" above), and
        # inertia_sample is the number measured on the sample.
        "sweep_sample_size": run.sweep_sample_size,
        "per_k": [
            {
                "k": row["k"],
                "inertia": row["inertia"],
                "inertia_sample": row["inertia_sample"],
                "silhouette": row["silhouette"],
            }
            for row in per_k_rows(run)
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
                "stability": cluster.stability,
                "unsegmented": cluster.is_noise,
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


def sweep_scale(run: TrainingRun) -> tuple[float, int | None]:
    """(factor, sample size): the per-K inertia times factor is on the scale of the final
    model's inertia (the customers it was fitted on). Sample size None: no sample."""
    fitted = max(run.customers_used - run.outliers, 0)
    sample = run.sweep_sample_size
    if not sample or fitted <= sample:
        return 1.0, None
    return fitted / sample, sample


def per_k_rows(run: TrainingRun) -> list[dict]:
    """Inertia (on the final model's scale; measured on the sweep's sample when there was
    one) and silhouette for each K tried."""
    factor, sample = sweep_scale(run)
    bic = run.bic_by_k or [None] * len(run.k_values)  # a mixture's, per K
    return [
        {
            "k": k,
            "inertia": round(inertia * factor, 4),
            "inertia_sample": inertia if sample else None,
            "silhouette": silhouette,
            "bic": bic_k,
            "chosen": k == run.chosen_k,
        }
        for k, inertia, silhouette, bic_k in zip(
            run.k_values, run.inertia_by_k, run.silhouette_by_k, bic
        )
    ]


# --------------------------------------------------------------------------- pages

SEX_LABELS = dict(Customer.Sex.choices)


# A segment's average this far from all customers' (a share of it) is marked higher or lower.
DIFFERENCE_MARKED = 0.10


@dataclass(frozen=True)
class FeatureRow:
    label: str
    unit: str
    value: float | None
    population: float | None
    in_model: bool = False
    better: str = ""  # the feature's good direction, if it has one (Feature.better)

    @property
    def difference(self) -> float | None:
        if self.value is None or self.population in (None, 0):
            return None
        return (self.value - self.population) / abs(self.population)

    @property
    def direction(self) -> str:
        """Higher or lower than all customers' average by enough to mark, else ""."""
        difference = self.difference
        if difference is None or abs(difference) <= DIFFERENCE_MARKED:
            return ""
        return "higher" if difference > 0 else "lower"

    @property
    def tone(self) -> str:
        """Good or bad only for a feature with a better direction ("" otherwise): an older
        or a poorer segment is different, not worse."""
        if not self.direction or not self.better:
            return ""
        return "good" if self.direction == self.better else "bad"


@dataclass(frozen=True)
class SegmentCard:
    segment: object
    cluster: Cluster | None
    features: list[FeatureRow]
    sex_mix: list[tuple[str, float]]
    colour: SegmentColour
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
        return SegmentCard(segment, None, [], [], segment.colour)
    population = run.population_means
    features = [
        FeatureRow(
            f.label, f.unit, cluster.means.get(f.key), population.get(f.key), in_model, f.better
        )
        for in_model, f in _card_features(run, catalogue)
        if f.key in population
    ]
    # A fixed order: PostgreSQL's jsonb does not keep the keys' order.
    sex_mix = [(SEX_LABELS[k], cluster.sex_mix[k]) for k in SEX_CODES if cluster.sex_mix.get(k)]
    if [code for code, share in cluster.sex_mix.items() if share] == ["unknown"]:
        sex_mix = []  # a file without sex: nothing to show
    # A categorical feature of the model first: its mix is the segment's centre on it.
    in_model = set(run.features)
    mixes = [
        (_mix_label(key, catalogue, key in in_model), shares)
        for key, shares in sorted(cluster.category_mix.items(), key=lambda i: i[0] not in in_model)
    ]
    return SegmentCard(segment, cluster, features, sex_mix, segment.colour, mixes)


def _mix_label(key: str, catalogue: Catalogue, in_model: bool) -> str:
    label = catalogue[key].label if key in catalogue else key
    return f"{label} (in the model)" if in_model else label


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
        "inertia": [row["inertia"] for row in per_k_rows(run)],
        "silhouette": run.silhouette_by_k,
        "chosen_k": run.chosen_k,
        "density": run.algorithm_requested == algorithms.HDBSCAN_KEY,  # chose its own K
        "lines": CHART_LINES,
        # In the cards' order (largest first), each in its segment's colour and marker.
        "segments": [
            {
                "index": c.index,
                "name": c.segment.name,
                "size": c.size,
                "share": c.share,
                **c.segment.colour.as_json(),
            }
            for c in clusters
        ],
        "projection": run.projection,
    }


# What the "What do these numbers mean?" panel (clustering/_help.html) explains.
METRIC_HELP = {
    "k_rule": engine.K_RULE,
    "confidence_formula": engine.CONFIDENCE_FORMULA,
    "silhouette_bands": describe_bands(SILHOUETTE_BANDS) + " (no clear segments).",
    "stability_bands": describe_bands(STABILITY_BANDS) + ".",
    "stability_rule": algorithms.STABILITY_RULE,
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


def run_feature_labels(run: TrainingRun, catalogue: Catalogue | None = None) -> list[str]:
    """The labels of a run's features as it trained on them (the catalogue's for a run that
    has not recorded them yet)."""
    info = run.feature_info or {}
    labels = []
    for key in run.features:
        if key in info:
            labels.append(info[key].get("label") or key)
        else:
            catalogue = catalogue or catalogue_current()
            labels.append(catalogue[key].label if key in catalogue else key)
    return labels


def runs_recent(limit: int = 100) -> list[TrainingRun]:
    """The newest runs, each with ``feature_labels``: the runs list compares runs, and a
    silhouette only compares runs on the same features."""
    runs = list(
        TrainingRun.objects.defer("projection").select_related("created_by", "activated_by")[:limit]
    )
    catalogue = catalogue_current()
    for run in runs:
        run.feature_labels = run_feature_labels(run, catalogue)
    return runs


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
    labels = {f.key: f.label for f in run_catalogue(run)}
    factor, sample = sweep_scale(run)
    return {
        "run": run,
        "clusters": clusters,
        "per_k": per_k_rows(run),
        "sweep_sample": sample,
        "sweep_factor": factor,
        "customers_fitted": run.customers_used - run.outliers,
        "active_run": run_active(with_projection=False),
        "feature_labels": labels,
        "coverage": run_coverage(run, labels) if clusters else "",
        "verdict": engine.silhouette_verdict(run.silhouette)
        if run.silhouette is not None
        else None,
        "charts": _chart_data(run, clusters) if clusters else None,
        "other_runs": TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        .exclude(id=run.id)
        .only("id", "chosen_k", "created_at")[:20],
        "comparison": run_algorithm_comparison(run=run),
        "segment_tree": segment_tree_drawing(clusters),
        "algorithm_label": algorithms.LABELS.get(run.algorithm_requested, ""),
        "k_rule": algorithms.K_RULES.get(run.algorithm_requested, engine.K_RULE),
    }


def run_algorithm_comparison(*, run: TrainingRun) -> dict | None:
    """The side-by-side table of the compare retrain this run belongs to (or holds)."""
    holder = run.comparison_of if run.comparison_of_id else run
    if not holder.comparison:
        return None
    return {**holder.comparison, "holder_id": holder.id, "this_run": run.id}


@dataclass(frozen=True)
class SegmentTree:
    drawing: algorithms.TreeDrawing
    names: dict[int, str]  # segment index -> name
    colours: dict[int, str]  # segment index -> colour
    steps: list[str]  # the merges in words, first (most alike) first


def segment_tree_drawing(clusters: list[Cluster]) -> SegmentTree | None:
    """The dendrogram of a run's segments (Unsegmented left out), for the run page."""
    segments = sorted((c for c in clusters if not c.is_noise), key=lambda c: c.index)
    if len(segments) < 2:
        return None
    features = list(segments[0].centroid_sd)
    centres = [[c.centroid_sd[f] for f in features] for c in segments]
    merges = algorithms.segment_tree(centres, [c.size for c in segments])
    names = {i: c.segment.name for i, c in enumerate(segments)}
    groups = {i: [name] for i, name in names.items()}
    steps = []
    for i, merge in enumerate(merges[:-1] if len(merges) > 1 else merges):
        left, right = groups[merge.left], groups[merge.right]
        steps.append(f"{' + '.join(left)} joins {' + '.join(right)}")
        groups[len(segments) + i] = left + right
    return SegmentTree(
        algorithms.draw_tree(merges, len(segments)),
        names,
        {i: c.segment.colour.hex for i, c in enumerate(segments)},
        steps,
    )


def _run_before(run: TrainingRun) -> TrainingRun | None:
    """The succeeded run trained just before ``run`` (else the one just after it)."""
    succeeded = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED).defer("projection")
    return (
        succeeded.filter(id__lt=run.id).order_by("-id").first()
        or succeeded.filter(id__gt=run.id).order_by("id").first()
    )


def _comparison_default() -> tuple[TrainingRun | None, TrainingRun | None]:
    """The active run (else the newest) against the run before it."""
    later = run_active(with_projection=False) or (
        TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        .defer("projection")
        .order_by("-id")
        .first()
    )
    if later is None:
        return None, None
    earlier = _run_before(later)
    return earlier, later


def _run_or_none(value) -> TrainingRun | None:
    try:
        return TrainingRun.objects.defer("projection").get(
            id=int(value), status=TrainingRun.Status.SUCCEEDED
        )
    except (TypeError, ValueError, TrainingRun.DoesNotExist):
        return None


def run_comparison_context(first, second) -> dict:
    """How many customers moved from which segment (run A) to which (run B). Without a
    choice: the active run against the one before it."""
    if first is None and second is None:
        run_a, run_b = _comparison_default()
    else:
        run_a, run_b = _run_or_none(first), _run_or_none(second)
    context = {
        "run_a": run_a,
        "run_b": run_b,
        "runs": TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED).only(
            "id", "chosen_k", "created_at"
        )[:50],
    }
    if run_a and run_b:
        catalogue = catalogue_current()
        run_a.feature_labels = run_feature_labels(run_a, catalogue)
        run_b.feature_labels = run_feature_labels(run_b, catalogue)
        context["same_features"] = sorted(run_a.features) == sorted(run_b.features)
        context["compared"] = [run_a, run_b]
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


def _band_choice(band) -> str:
    low, high = CONFIDENCE_FILTERS[band.key]
    if high is None:
        return f"{band.label} ({low * 100:.0f} %+)"
    if low is None:
        return f"{band.label} (below {high * 100:.0f} %)"
    return f"{band.label} ({low * 100:.0f}–{high * 100:.0f} %)"


CONFIDENCE_CHOICES = [(band.key, _band_choice(band)) for band in CONFIDENCE_BANDS]


@dataclass(frozen=True)
class MemberColumn:
    key: str
    label: str
    feature: Feature | None = None
    rfm_field: str = ""  # a CustomerRfm field (scores and group)

    def value(self, customer: Customer):
        if self.rfm_field:
            return rfm_value(customer, self.rfm_field)
        if self.feature is None:
            return getattr(customer, self.key)
        if self.feature.source == SOURCE_PURCHASES:
            value = rfm_value(customer, self.feature.column)
            # Sums and means of amounts: cents, not 336.34000000000003.
            return round(value, 2) if isinstance(value, float) else value
        if self.feature.source == SOURCE_FIELD:
            value = getattr(customer, self.key)
        else:
            value = (customer.attributes or {}).get(self.key)
        # A category with fixed codes reads as its label ("female" -> "Female").
        return dict(self.feature.choices).get(value, value) if self.feature.choices else value


def member_columns(run: TrainingRun, catalogue: Catalogue) -> list[MemberColumn]:
    """Customer ID, confidence, the run's features, then every other catalogue feature."""
    features = [f for _in_model, f in _card_features(run, catalogue)]
    # A categorical feature of the run is among the run's own, first; not twice.
    features += [f for f in catalogue.categorical() if f.key not in run.features]
    rfm = [MemberColumn(k, label, None, f) for k, label, f in RFM_MEMBER_COLUMNS]
    return [
        MemberColumn("customer_id", "Customer ID"),
        MemberColumn("confidence", "Confidence"),
        *(MemberColumn(f.key, f.label, f) for f in features),
        *(rfm if rfm_exists() else ()),
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
    elif column.rfm_field:
        expression = F(f"customer__rfm__{column.rfm_field}")
    elif column.feature is not None and column.feature.source == SOURCE_PURCHASES:
        expression = F(f"customer__rfm__{column.feature.column}")
    elif column.feature is None or column.feature.source == SOURCE_FIELD:
        expression = F(f"customer__{key}")
    else:
        expression = F(f"customer__attributes__{key}")
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)


@dataclass(frozen=True)
class RangeFilter:
    """A numeric feature's "from" and "to" as typed (either may be blank) and as numbers."""

    feature: Feature
    low_text: str = ""
    high_text: str = ""
    low: float | None = None
    high: float | None = None
    error: str = ""

    @property
    def is_set(self) -> bool:
        return self.low is not None or self.high is not None

    def expression(self):
        if self.feature.source == SOURCE_FIELD:
            return F(f"customer__{self.feature.key}")
        if self.feature.source == SOURCE_PURCHASES:
            return F(f"customer__rfm__{self.feature.column}")
        # A missing value or a JSON null must match no range: PostgreSQL's ->> gives NULL
        # for both, SQLite's reading of a JSON null is the text 'null' (which casts to 0).
        text = KeyTextTransform(self.feature.key, "customer__attributes")
        return Cast(NullIf(text, Value("null")), FloatField())


@dataclass(frozen=True)
class MemberFilters:
    """What the members table and its campaign export are narrowed to."""

    search: str = ""
    band: str = ""
    ranges: tuple[RangeFilter, ...] = ()
    text_features: tuple[Feature, ...] = ()  # the categorical ones the search also reads

    @property
    def active(self) -> bool:
        return bool(self.search or self.band or any(r.is_set for r in self.ranges))

    @property
    def query(self) -> str:
        """The filters as a query string: the sort links, the pages and the export keep them."""
        pairs = [("q", self.search), ("band", self.band)]
        for r in self.ranges:
            pairs += [(f"min_{r.feature.key}", r.low_text), (f"max_{r.feature.key}", r.high_text)]
        return urlencode([(name, value) for name, value in pairs if value])


def _typed_number(feature: Feature, end: str, text: str) -> tuple[float | None, str]:
    if not text:
        return None, ""
    try:
        return parse_number(text, decimal_comma=False), ""
    except Invalid as problem:
        return None, f"{feature.label} {end}: “{text}” {problem.reason}."


def member_filters(params, *, run: TrainingRun, catalogue: Catalogue) -> MemberFilters:
    """The filters in a request's parameters: search text, confidence band, and a range for
    each numeric feature (min_<key>, max_<key>); what cannot be read is ignored and said."""
    ranges = []
    for _in_model, feature in _card_features(run, catalogue):
        low_text = (params.get(f"min_{feature.key}") or "").strip()[:40]
        high_text = (params.get(f"max_{feature.key}") or "").strip()[:40]
        low, low_error = _typed_number(feature, "from", low_text)
        high, high_error = _typed_number(feature, "to", high_text)
        ranges.append(RangeFilter(feature, low_text, high_text, low, high, low_error or high_error))
    band = params.get("band") if params.get("band") in CONFIDENCE_FILTERS else ""
    return MemberFilters(
        search=(params.get("q") or "").strip(),
        band=band,
        ranges=tuple(ranges),
        text_features=catalogue.categorical(),
    )


def _search_condition(search: str, features: tuple[Feature, ...]) -> Q:
    """Anywhere in the customer ID, or in a text attribute; a category with fixed labels
    ("Female") matches by label, and a whole label only itself ("male" is not "female")."""
    condition = Q(customer__customer_id__icontains=search)
    wanted = search.casefold()
    for feature in features:
        path = (
            f"customer__{feature.key}"
            if feature.source == SOURCE_FIELD
            else f"customer__attributes__{feature.key}"
        )
        if feature.choices:
            names = [(code, {code.casefold(), label.casefold()}) for code, label in feature.choices]
            codes = [code for code, spelled in names if wanted in spelled] or [
                code for code, spelled in names if any(wanted in name for name in spelled)
            ]
            if codes:
                condition |= Q(**{f"{path}__in": codes})
        else:
            condition |= Q(**{f"{path}__icontains": search})
    return condition


def _members_queryset(cluster: Cluster, filters: MemberFilters):
    queryset = ClusterAssignment.objects.filter(cluster=cluster)
    if filters.search:
        # No customer data holds a NUL (PostgreSQL even refuses one in a query): nothing matches.
        if "\x00" in filters.search:
            return queryset.none()
        queryset = queryset.filter(_search_condition(filters.search, filters.text_features))
    if filters.band:
        low, high = CONFIDENCE_FILTERS[filters.band]
        if low is not None:
            queryset = queryset.filter(confidence__gte=low)
        if high is not None:
            queryset = queryset.filter(confidence__lt=high)
    for r in filters.ranges:
        if r.is_set:
            name = f"range_{r.feature.key}"
            queryset = queryset.alias(**{name: r.expression()})
            if r.low is not None:
                queryset = queryset.filter(**{f"{name}__gte": r.low})
            if r.high is not None:
                queryset = queryset.filter(**{f"{name}__lte": r.high})
    return queryset


def segment_members_context(*, segment, params) -> dict:
    """One page of a segment's members in the active run, searched, filtered and sorted."""
    cluster = segment_active_cluster(segment=segment)
    context = {"segment": segment, "cluster": cluster}
    if cluster is None:
        return context
    catalogue = run_catalogue(cluster.run)
    columns = member_columns(cluster.run, catalogue)
    filters = member_filters(params, run=cluster.run, catalogue=catalogue)
    queryset = _members_queryset(cluster, filters)
    sort = params.get("sort") or "-confidence"
    order = _order_by(sort, columns)
    if order is None:
        sort, order = "-confidence", F("confidence").desc()
    # Ties follow the main direction, so the confidence order is one index scan.
    tie_break = "-customer_id" if sort.startswith("-") else "customer_id"
    queryset = queryset.select_related("customer", "customer__rfm").order_by(order, tie_break)
    paginator = Paginator(queryset, 50)
    if not filters.active:
        # The size is known from the run: no COUNT over a large segment.
        paginator.count = cluster.size
    page = paginator.get_page(params.get("page"))
    rows = [
        {"assignment": a, "cells": [c.value(a.customer) for c in columns[2:]]}
        for a in page.object_list
    ]
    context.update(
        page=page,
        rows=rows,
        columns=columns,
        sort=sort,
        filters=filters,
        confidence_choices=CONFIDENCE_CHOICES,
    )
    return context


def segment_export_lines(*, cluster: Cluster, params) -> Iterator[str]:
    """Campaign-ready CSV lines of a segment's members, streamed in chunks (through the
    site's one CSV writer, which keeps formulas from running in a spreadsheet)."""
    writer = SafeCsvWriter()
    segment = cluster.segment
    strategy = segment_strategy_text(segment)
    # The RFM values live in their own table: read from there, after the customer's values.
    rfm = rfm_export_columns()
    columns = [c for c in export_columns() if c not in {key for key, _f in rfm}]
    # A run without clear segments says so on every row, where a campaign tool reads it.
    warning = silhouette_warning(cluster.run.silhouette)
    yield writer.row(
        (*columns, *(k for k, _f in rfm), "segment", "confidence", "band", "strategy",
         "segment_warning")
    )  # fmt: skip
    built_in = [c for c in columns if c in CUSTOMER_FIELDS]
    attributes = [c for c in columns if c not in CUSTOMER_FIELDS]
    filters = member_filters(params, run=cluster.run, catalogue=run_catalogue(cluster.run))
    queryset = _members_queryset(cluster, filters)
    rows = queryset.order_by("-confidence", "customer_id").values_list(
        *(f"customer__{c}" for c in built_in),
        "customer__attributes",
        *(f"customer__rfm__{f}" for _k, f in rfm),
        "confidence",
    )
    for *values, confidence in rows.iterator(chunk_size=5_000):
        values, extra, scores = (
            values[: len(built_in)],
            values[len(built_in)],
            values[len(built_in) + 1 :],
        )
        extra = extra or {}
        if scores:  # the group by its name, as the page shows it
            scores[-1] = group_name(scores[-1])
        yield writer.row(
            (
                *values,
                *(extra.get(a) for a in attributes),
                *scores,
                segment.name,
                Decimal(f"{engine.confidence_rounded(confidence):.4f}"),
                engine.confidence_band(confidence),
                strategy,
                warning,
            )
        )


def silhouette_warning(silhouette: float | None) -> str:
    """The silhouette band's warning ("no clear segments: ..."), "" when the segments hold."""
    return "" if silhouette is None else band_for(SILHOUETTE_BANDS, silhouette).warning


def segment_strategy_text(segment: Segment) -> str:
    """The strategy in one cell, cut at SEGMENT_STRATEGY_EXPORT_MAX_LENGTH: it is repeated
    on every member's row (the forms bound what people write; older text may be longer)."""
    text = " | ".join([segment.description, *segment.actions]).strip(" |")
    limit = SEGMENT_STRATEGY_EXPORT_MAX_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


def customer_values(*, customer: Customer) -> dict:
    """A customer's ID and every catalogue value (numbers and categories)."""
    values = {"customer_id": customer.customer_id}
    for feature in catalogue_current():
        if feature.source == SOURCE_FIELD:
            values[feature.key] = getattr(customer, feature.key)
        elif feature.key in (customer.attributes or {}):
            values[feature.key] = customer.attributes[feature.key]
    return values


def customer_segment(*, customer: Customer) -> dict | None:
    """The customer's segment in the active run, with the confidence (None outside it)."""
    assignment = (
        ClusterAssignment.objects.filter(run__is_active=True, customer=customer)
        .select_related("cluster__segment")
        .first()
    )
    if assignment is None:
        return None
    return {
        "id": assignment.cluster.segment_id,
        "name": assignment.cluster.segment.name,
        "run_id": assignment.run_id,
        "confidence": engine.confidence_rounded(assignment.confidence),
        "band": engine.confidence_band(assignment.confidence),
        "unusual": assignment.unusual,
    }
