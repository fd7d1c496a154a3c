"""Celery tasks of the purchase history. A task takes an id, re-fetches and calls a service."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from purchases.clv_services import clv_run_claim, clv_run_execute
from purchases.import_jobs import purchase_import_claim, purchase_import_execute
from purchases.recovery import (
    failed_import_files_delete,
    purchase_jobs_reap,
    purchase_jobs_resend,
)

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 120)
def transactions_import_task(job_id: int) -> None:
    """Import the order log of PurchaseImport ``job_id`` unless another delivery claimed it."""
    if purchase_import_claim(job_id=job_id):
        purchase_import_execute(job_id=job_id)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3600 + 120)
def clv_fit_task(run_id: int) -> None:
    """Fit CLV run ``run_id`` unless another delivery of this task already claimed it."""
    if clv_run_claim(run_id=run_id):
        clv_run_execute(run_id=run_id)


@shared_task(ignore_result=True)
def purchases_reap_task() -> int:
    """Fail imports and fits whose worker went silent, re-send those no worker claimed
    for a minute, and delete files of failed imports nobody retried (purchases.recovery);
    Celery beat sends this every CLUSTERING_REAP_SECONDS."""
    reaped = purchase_jobs_reap()
    purchase_jobs_resend()
    failed_import_files_delete()
    return reaped


@worker_ready.connect
def look_for_lost_purchase_jobs(**_kwargs) -> None:
    """A starting worker looks at once for imports and fits whose message no broker holds."""
    try:
        purchases_reap_task.delay()
    except Exception:  # the broker went away again: beat tries every minute
        logger.warning("could not look for lost purchase jobs at start", exc_info=True)
