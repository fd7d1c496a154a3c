"""Celery tasks. A task takes an id, re-fetches what it needs and calls a service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from clustering.services import training_run_claim, training_run_execute


@shared_task(
    acks_late=True,
    soft_time_limit=settings.CLUSTERING_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CLUSTERING_TASK_SOFT_TIME_LIMIT + 120,
)
def train_task(run_id: int) -> None:
    """Train run ``run_id`` unless another delivery of this task already claimed it."""
    if training_run_claim(run_id=run_id):
        training_run_execute(run_id=run_id)
