"""Celery tasks. A task takes an id, re-fetches what it needs and calls a service."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from clustering.services import (
    training_run_claim,
    training_run_execute,
    training_runs_reap,
    training_runs_resend,
)

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    soft_time_limit=settings.CLUSTERING_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CLUSTERING_TASK_SOFT_TIME_LIMIT + 120,
)
def train_task(run_id: int) -> None:
    """Train run ``run_id`` unless another delivery of this task already claimed it."""
    if training_run_claim(run_id=run_id):
        training_run_execute(run_id=run_id)


@shared_task(ignore_result=True)
def reap_task() -> int:
    """Fail runs whose worker went silent and re-send runs no worker claimed for a minute
    (their message may be lost); Celery beat sends this every CLUSTERING_REAP_SECONDS."""
    reaped = training_runs_reap()
    if reaped:
        logger.warning("marked %s silent or abandoned training run(s) failed", reaped)
    training_runs_resend()
    return reaped


@worker_ready.connect
def look_for_lost_runs(**_kwargs) -> None:
    """A worker that starts looks at once for pending runs whose message no broker holds
    (a worker stopped while Redis restarted without persistence), through its own queue."""
    try:
        reap_task.delay()
    except Exception:  # the broker went away again: beat tries every minute
        logger.warning("could not look for lost training runs at start", exc_info=True)
