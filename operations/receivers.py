"""Where operations listens: the training service's signals and the end of Celery tasks."""

from __future__ import annotations

import logging

from celery.signals import task_postrun
from django.dispatch import receiver

from clustering.services import activation_requested, run_trained

logger = logging.getLogger(__name__)


@receiver(run_trained)
def keep_drift_baseline(sender, *, run_id, features, X, customer_pks, labels, **_kwargs):
    """In the run's own transaction: the baseline exists exactly when the run does."""
    from operations.monitoring import baseline_store

    baseline_store(run_id=run_id, features=features, X=X, customer_pks=customer_pks, labels=labels)


@receiver(activation_requested)
def apply_schedule_rule(sender, *, run_id, **_kwargs):
    from operations.schedules import scheduled_run_decide

    return scheduled_run_decide(run_id=run_id)


@task_postrun.connect
def announce_after_training(sender=None, **_kwargs):
    """After a training task (or the reaper) the worker announces what finished."""
    if sender is None or sender.name not in (
        "clustering.tasks.train_task",
        "clustering.tasks.reap_task",
    ):
        return
    from operations.notifications import notify_finished_runs

    try:
        notify_finished_runs()
    except Exception:  # never let telling people break the worker
        logger.exception("could not announce finished runs")
