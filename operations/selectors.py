"""Reads for the operations pages and the dashboard's notices."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from clustering.models import TrainingRun
from operations import drift
from operations.models import DriftReport, PredictionRecord, Schedule, ScheduledRun
from operations.schedules import schedule_next_run
from operations.status import broker_check, model_files, worker_state


def schedules_with_next_run() -> list[tuple[Schedule, object]]:
    schedules = Schedule.objects.select_related("periodic_task")
    return [(schedule, schedule_next_run(schedule)) for schedule in schedules]


def overview_context() -> dict:
    files = model_files()
    cutoff = timezone.now() - timedelta(days=settings.PREDICTION_HISTORY_DAYS)
    return {
        "schedules": schedules_with_next_run(),
        "scheduled_runs": ScheduledRun.objects.select_related("schedule", "run", "triggered_by")[
            :10
        ],
        "runs": TrainingRun.objects.defer("projection").select_related("scheduled__schedule")[:10],
        "worker": worker_state(),
        "broker": broker_check(),
        "heartbeat_seconds": settings.OPERATIONS_HEARTBEAT_SECONDS,
        "model_files": files,
        "model_bytes": sum(f.size for f in files),
        "prunable_bytes": sum(f.size for f in files if f.prunable),
        "predictions": PredictionRecord.objects.count(),
        "predictions_old": PredictionRecord.objects.filter(created_at__lt=cutoff).count(),
        "retention_days": settings.PREDICTION_HISTORY_DAYS,
        "drift": drift_latest(),
        "thresholds": drift_thresholds(),
    }


def drift_latest() -> DriftReport | None:
    """The latest drift report of the active run."""
    return DriftReport.objects.filter(run__is_active=True).select_related("run").first()


def drift_thresholds() -> dict:
    return {
        "moderate": drift.PSI_MODERATE,
        "large": drift.PSI_LARGE,
        "changed_moderate": drift.CHANGED_MODERATE,
        "changed_large": drift.CHANGED_LARGE,
    }


def drift_words(item: dict) -> str:
    """'higher than at training (median 41 then, 58 now)' for one feature of a report."""
    then, now = item.get("median_then"), item.get("median_now")
    if item.get("level") == drift.STABLE:
        return "about as at training" + (f" (median {now:.4g})" if now is not None else "")
    if then is None or now is None or now == then:
        return "spread differently than at training" + (
            f" around the same median ({now:.4g})" if now is not None else ""
        )
    way = "higher" if now > then else "lower"
    return f"{way} than at training (median {then:.4g} then, {now:.4g} now)"


def customer_segment_history(*, customer_pk: int) -> list[dict]:
    """The customer's segment in each run that still keeps its assignments, newest first
    (older runs' assignments are pruned: CLUSTERING_KEEP_ASSIGNMENT_RUNS)."""
    from clustering.models import ClusterAssignment

    rows = (
        ClusterAssignment.objects.filter(customer_id=customer_pk)
        .select_related("run", "cluster__segment")
        .order_by("-run__finished_at", "-run_id")
    )
    history = []
    for row in rows:
        history.append(
            {
                "run": row.run,
                "segment": row.cluster.segment,
                "confidence": row.confidence,
                "unusual": row.unusual,
            }
        )
    # A move: the segment differs from the one in the run before: the next row of another
    # retrain (a compare retrain's candidates are runs of one retrain, none before another).
    for position, newer in enumerate(history):
        retrain = _retrain_of(newer["run"])
        older = next((o for o in history[position + 1 :] if _retrain_of(o["run"]) != retrain), None)
        moved = older is not None and older["segment"] != newer["segment"]
        newer["moved_from"] = older["segment"] if moved else None
    return history


def _retrain_of(run) -> int:
    """The retrain a run came from: a compare's candidates point at its recommended run."""
    return run.comparison_of_id or run.id
