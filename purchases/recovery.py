"""Purchase imports and CLV fits whose worker died or whose queue message was lost.

The same guarantees as a training run, from the same mechanism (clustering.services): the
worker beats from a thread of its own (``Heartbeat``), a running job silent for longer than
CLUSTERING_HEARTBEAT_TIMEOUT is failed, a pending one no worker claimed is re-sent after a
minute and failed after CLUSTERING_PENDING_TIMEOUT (``reap_cutoffs``: one definition for
all jobs). Celery beat calls ``purchase_jobs_reap`` and ``purchase_jobs_resend`` every
CLUSTERING_REAP_SECONDS, a starting worker once, and the status pages on every poll.

An import that dies rolls back with its connection, so nothing of it is stored; its file
stays on disk, and the status page offers to import it again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django import db
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from clustering.models import RESEND_AFTER
from clustering.services import Heartbeat, reap_cutoffs
from purchases.models import ClvRun, PurchaseImport

logger = logging.getLogger(__name__)

IMPORT_WORKER_SILENT = (
    "The worker stopped while importing this file (it may have been restarted or run out of "
    "memory); nothing was imported. Import it again."
)
IMPORT_NO_WORKER = (
    "No worker picked up this import in time; nothing was imported. Check that a Celery "
    "worker is running, then import it again."
)
CLV_WORKER_SILENT = (
    "The worker fitting this model stopped responding (it may have been restarted or run out "
    "of memory). The active CLV model stays; start the fit again."
)
CLV_NO_WORKER = (
    "No worker picked up this fit in time. Check that a Celery worker is running; the active "
    "CLV model stays."
)
# The file of an import that failed this long ago and was not imported again is deleted.
KEEP_FAILED_FILES = timezone.timedelta(days=1)


class ImportHeartbeat(Heartbeat):
    model = PurchaseImport


class ClvHeartbeat(Heartbeat):
    model = ClvRun


def purchase_jobs_reap() -> int:
    """Fail imports and fits whose worker went silent or that no worker claimed in time.

    Each is one conditional UPDATE on the database's clock, so a job that beats or is
    claimed meanwhile is left alone. On SQLite a running import holds the write lock (its
    heartbeat waits behind it): a locked database means its worker is alive, and the reap
    is left to the next call."""
    silent, waiting = reap_cutoffs()
    reaped = 0
    for model, dead_message, unclaimed_message in (
        (PurchaseImport, IMPORT_WORKER_SILENT, IMPORT_NO_WORKER),
        (ClvRun, CLV_WORKER_SILENT, CLV_NO_WORKER),
    ):
        dead = model.objects.filter(status=model.Status.RUNNING, heartbeat_at__lt=silent)
        stale = model.objects.filter(status=model.Status.PENDING, created_at__lt=waiting)
        for jobs, message in ((dead, dead_message), (stale, unclaimed_message)):
            # Read first: a page poll must not queue for SQLite's write lock for nothing.
            if not jobs.exists():
                continue
            try:
                reaped += jobs.update(
                    status=model.Status.FAILED, step="Failed", error=message, finished_at=Now()
                )
            except db.OperationalError:
                logger.warning("could not reap %s jobs now", model.__name__, exc_info=True)
    if reaped:
        logger.warning("marked %s silent or abandoned purchase job(s) failed", reaped)
    return reaped


def purchase_jobs_resend() -> list[tuple[str, int]]:
    """Send the task again for imports and fits pending for over a minute (their message
    may be lost with a broker restart). Harmless when the first message still exists:
    claiming is one conditional UPDATE, so a second delivery does nothing."""
    from purchases.tasks import clv_fit_task, transactions_import_task

    due = Now() - RESEND_AFTER
    resent = []
    for model, task in ((PurchaseImport, transactions_import_task), (ClvRun, clv_fit_task)):
        waiting = model.objects.filter(status=model.Status.PENDING, created_at__lt=due)
        waiting = waiting.filter(Q(resent_at__isnull=True) | Q(resent_at__lt=due))
        for job_id in waiting.values_list("id", flat=True):
            if not model.objects.filter(id=job_id, status=model.Status.PENDING).update(
                resent_at=Now()
            ):
                continue  # claimed or failed meanwhile
            try:
                task.delay(job_id)
            except Exception as problem:  # kombu raises many kinds; beat tries again
                logger.warning("could not re-send %s %s: %s", model.__name__, job_id, problem)
                continue
            logger.warning(
                "%s %s waited over a minute: its task was re-sent", model.__name__, job_id
            )
            resent.append((model.__name__, job_id))
    return resent


def failed_import_files_delete() -> int:
    """Delete the kept files of imports that failed a day ago and were not imported again."""
    old = PurchaseImport.objects.filter(
        status=PurchaseImport.Status.FAILED, finished_at__lt=timezone.now() - KEEP_FAILED_FILES
    ).exclude(stored_path="")
    deleted = 0
    for job_id, stored_path in old.values_list("id", "stored_path"):
        Path(stored_path).unlink(missing_ok=True)
        deleted += PurchaseImport.objects.filter(id=job_id).update(stored_path="")
    return deleted
