"""Reads of the audit trail and of segments over time: strategy versions, activations, a
segment's size and centre across the runs it lived through, who joined and who left it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from audit import charts
from audit.models import RunActivation, StrategyVersion
from clustering.models import Cluster, ClusterAssignment, Segment, TrainingRun
from clustering.palette import colour_of
from clustering.selectors import run_feature_labels
from customers.models import Customer
from customers.services import SafeCsvWriter


def strategy_versions(*, segment: Segment) -> list[StrategyVersion]:
    return list(segment.strategy_versions.select_related("author").order_by("-number"))


def run_activations(*, run: TrainingRun | None = None, limit: int = 50) -> list[RunActivation]:
    activations = RunActivation.objects.select_related("user")
    if run is not None:
        activations = activations.filter(run=run)
    return list(activations[:limit])


def segment_clusters(*, segment: Segment) -> list[Cluster]:
    """The segment's clusters in every succeeded run, oldest run first."""
    return list(
        Cluster.objects.filter(segment=segment, run__status=TrainingRun.Status.SUCCEEDED)
        .select_related("run")
        .defer("run__projection")
        .order_by("run_id")
    )


def segment_timeline(*, segment: Segment) -> dict:
    """Size and centre of the segment in each run it lived through, as tables and charts.

    The centre is drawn in standard deviations from the average customer (every feature on
    one scale); the table gives it in the features' own units as well."""
    clusters = segment_clusters(segment=segment)
    labels = [f"Run {c.run_id}" for c in clusters]
    colour = segment.colour.hex
    size_chart = charts.line_chart(
        labels, [("Customers", colour, [c.size for c in clusters])], from_zero=True
    )
    features: list[str] = []
    for cluster in clusters:
        features += [f for f in cluster.run.features if f not in features]
    names = {}
    for cluster in clusters:
        names.update(zip(cluster.run.features, run_feature_labels(cluster.run)))
    centre_chart = charts.line_chart(
        labels,
        [
            (names.get(f, f), colour_of(i).hex, [c.centroid_sd.get(f) for c in clusters])
            for i, f in enumerate(features)
        ],
        number_format="{:+.1f}",
    )
    rows = [
        {
            "cluster": c,
            "centre": [c.centroid.get(f) for f in features],
            "centre_sd": [c.centroid_sd.get(f) for f in features],
        }
        for c in clusters
    ]
    return {
        "clusters": clusters,
        "rows": rows,
        "features": [names.get(f, f) for f in features],
        "size_chart": size_chart,
        "centre_chart": centre_chart,
    }


class ChangesUnavailable(Exception):
    """A run's assignments were pruned, or a run is not a succeeded one."""


LISTED_CHANGES = 50  # customer IDs listed on a page; the CSV and the API give them all


@dataclass(frozen=True)
class SegmentChanges:
    segment: Segment
    run_from: TrainingRun
    run_to: TrainingRun
    joined: int
    left: int
    stayed: int
    joined_ids: tuple[str, ...] = ()  # the first LISTED_CHANGES, by customer ID
    left_ids: tuple[str, ...] = ()


def _cluster(segment: Segment, run: TrainingRun) -> Cluster | None:
    return Cluster.objects.filter(segment=segment, run=run).first()


def _members(cluster: Cluster | None):
    if cluster is None:
        return ClusterAssignment.objects.none()
    return ClusterAssignment.objects.filter(cluster=cluster)


def _check_runs(*runs: TrainingRun) -> None:
    for run in runs:
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise ChangesUnavailable(f"Run {run.id} has not succeeded.")
        if run.assignments_pruned:
            raise ChangesUnavailable(
                f"Run {run.id} is too old: its customer assignments were pruned."
            )


def _joined_left(segment: Segment, run_from: TrainingRun, run_to: TrainingRun):
    """Querysets of the customer pks that joined and left: a set difference of the two
    runs' members of the segment."""
    before = _members(_cluster(segment, run_from)).values("customer_id")
    after = _members(_cluster(segment, run_to)).values("customer_id")
    joined = after.exclude(customer_id__in=before)
    left = before.exclude(customer_id__in=after)
    return joined, left, after.filter(customer_id__in=before)


def _first_ids(queryset) -> tuple[str, ...]:
    customers = Customer.objects.filter(pk__in=queryset.values("customer_id"))
    ids = customers.order_by("customer_id").values_list("customer_id", flat=True)
    return tuple(ids[:LISTED_CHANGES])


def segment_changes(
    *, segment: Segment, run_from: TrainingRun, run_to: TrainingRun
) -> SegmentChanges:
    """Counts of who joined, left and stayed, with the first IDs of those who moved."""
    _check_runs(run_from, run_to)
    joined, left, stayed = _joined_left(segment, run_from, run_to)
    return SegmentChanges(
        segment,
        run_from,
        run_to,
        joined.count(),
        left.count(),
        stayed.count(),
        _first_ids(joined),
        _first_ids(left),
    )


def segment_changes_ids(
    *, segment: Segment, run_from: TrainingRun, run_to: TrainingRun
) -> tuple[list[str], list[str]]:
    """(joined, left) customer IDs, sorted."""
    _check_runs(run_from, run_to)
    joined, left, _stayed = _joined_left(segment, run_from, run_to)

    def ids(queryset) -> list[str]:
        pks = queryset.values("customer_id")
        return sorted(Customer.objects.filter(pk__in=pks).values_list("customer_id", flat=True))

    return ids(joined), ids(left)


def segment_changes_lines(
    *, segment: Segment, run_from: TrainingRun, run_to: TrainingRun
) -> Iterator[str]:
    """The CSV: one row per customer who joined or left, with which."""
    joined, left = segment_changes_ids(segment=segment, run_from=run_from, run_to=run_to)
    writer = SafeCsvWriter()
    yield writer.row(("customer_id", "change", "segment", "from_run", "to_run"))
    for change, ids in (("joined", joined), ("left", left)):
        for customer_id in ids:
            yield writer.row((customer_id, change, segment.name, run_from.id, run_to.id))


def run_pair_changes(*, run_from: TrainingRun, run_to: TrainingRun) -> list[SegmentChanges]:
    """Joined/left counts of every segment in either run (the compare page)."""
    try:
        _check_runs(run_from, run_to)
    except ChangesUnavailable:
        return []
    segments = Segment.objects.filter(clusters__run__in=[run_from, run_to]).distinct()
    return [segment_changes(segment=s, run_from=run_from, run_to=run_to) for s in segments]
