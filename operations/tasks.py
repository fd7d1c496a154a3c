"""Celery tasks of operations; beat starts them (the database scheduler)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from operations.models import ScheduledRun

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def scheduled_retrain_task(schedule_id: int, reason: str = ScheduledRun.Reason.CALENDAR) -> None:
    """Start a schedule's retrain; the training itself is clustering's train_task."""
    from operations.schedules import schedule_fire

    link = schedule_fire(schedule_id=schedule_id, reason=reason)
    if link is not None and link.outcome == ScheduledRun.Outcome.SKIPPED:
        logger.warning("schedule %s skipped: %s", schedule_id, link.detail)


@shared_task(ignore_result=True, soft_time_limit=600)
def drift_check_task() -> None:
    """Measure drift (beat, every OPERATIONS_DRIFT_CHECK_SECONDS)."""
    from operations.monitoring import drift_check

    drift_check()


@shared_task(ignore_result=True)
def prune_task() -> None:
    from operations.history import predictions_prune

    deleted = predictions_prune()
    if deleted:
        logger.info(
            "pruned %s predictions older than %s days", deleted, settings.PREDICTION_HISTORY_DAYS
        )


@shared_task(ignore_result=True)
def heartbeat_task() -> None:
    """Beat sends this every OPERATIONS_HEARTBEAT_SECONDS: it ran, so the worker, the
    queue and beat all work; it also announces runs the web process failed."""
    from operations.monitoring import drift_check
    from operations.notifications import notify_finished_runs
    from operations.status import WORKER, status_note

    status_note(name=WORKER, ok=True)
    notify_finished_runs()
    # Customers imported or changed since drift was last measured: measure it now, so the
    # dashboard warns within a heartbeat of an import.
    try:
        drift_check(only_if_changed=True)
    except Exception:  # a missing model file, say: the heartbeat itself has been noted
        logger.exception("drift could not be measured")
