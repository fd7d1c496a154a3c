"""Celery tasks of the purchase history. A task takes an id, re-fetches and calls a service."""

from __future__ import annotations

from celery import shared_task

from purchases.clv_services import clv_run_claim, clv_run_execute
from purchases.import_jobs import purchase_import_claim, purchase_import_execute


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
