"""Order logs imported from the page, in the background.

The page checks a file (a dry run) and, once the user confirms, hands it to a worker: the
upload moves to a folder of its own (out of reach of the upload folder's clean-up, which
removes files a request left behind after ten minutes) and a PurchaseImport row records the
choices made on the page. The worker claims the row in one UPDATE, imports the file with
the same service as the command (all or nothing, RFM brought up to date in the same
transaction), writes progress from a thread of its own (the import's transaction would
hide it) and deletes the file whatever happens.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from functools import partial
from pathlib import Path

from django import db
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.functions import Now
from django.utils import timezone

from customers.csv_format import CsvFormatError
from purchases.models import PurchaseImport
from purchases.recovery import ImportHeartbeat
from purchases.services import TransactionOptions, transactions_import_file

logger = logging.getLogger(__name__)
# Where each phase of the import sits on the progress bar (start, end in percent).
PHASES = {
    "writing": (2, 92, "Checking and adding the purchases"),
    "rfm": (93, 99, "Bringing RFM values up to date"),
}
QUEUE_UNAVAILABLE = (
    "The import queue is unavailable, so the file was not imported. Upload it again in a "
    "few minutes."
)


def import_dir() -> Path:
    path = Path(settings.VAR_DIR) / "purchase-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def purchase_import_start(*, path: Path, file_name: str, options: dict, user=None):
    """Take over a claimed upload and queue its import; returns the PurchaseImport."""
    kept = import_dir() / f"{secrets.token_hex(16)}.log"
    os.replace(path, kept)
    job = PurchaseImport.objects.create(
        file_name=file_name[:255],
        stored_path=str(kept),
        options=options,
        step="Waiting for a worker",
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(partial(purchase_import_enqueue, job_id=job.id))
    return job


def purchase_import_enqueue(*, job_id: int) -> None:
    from purchases.tasks import transactions_import_task

    try:
        transactions_import_task.delay(job_id)
    except Exception as problem:  # kombu raises many kinds; all mean "not queued"
        logger.warning("could not queue purchase import %s: %s", job_id, problem)
        _finish(job_id, status=PurchaseImport.Status.FAILED, error=QUEUE_UNAVAILABLE)


def purchase_import_retry(*, job_id: int, user=None) -> PurchaseImport | None:
    """Queue the kept file of a failed import again, as a new import; None when there is
    nothing to retry (it did not fail before importing, or it was retried already)."""
    job = PurchaseImport.objects.get(id=job_id)
    if not job.can_retry:
        return None
    # One conditional UPDATE hands the file over, so a double click queues it once.
    if not PurchaseImport.objects.filter(id=job_id, stored_path=job.stored_path).update(
        stored_path=""
    ):
        return None
    retry = PurchaseImport.objects.create(
        file_name=job.file_name,
        stored_path=job.stored_path,
        options=job.options,
        step="Waiting for a worker",
        retry_of=job,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(partial(purchase_import_enqueue, job_id=retry.id))
    return retry


def purchase_import_claim(*, job_id: int) -> bool:
    """Pending -> running in one UPDATE, so a task delivered twice imports once."""
    return bool(
        PurchaseImport.objects.filter(id=job_id, status=PurchaseImport.Status.PENDING).update(
            status=PurchaseImport.Status.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=Now(),
            step="Starting",
            progress=1,
        )
    )


def purchase_import_execute(*, job_id: int) -> PurchaseImport:
    """Import a claimed file; the outcome (or the reason it failed) goes on the row."""
    job = PurchaseImport.objects.get(id=job_id)
    writer = ProgressWriter(job_id)
    heartbeat = ImportHeartbeat(job_id)  # a worker that dies stops beating: recovery
    heartbeat.start()
    try:
        report = transactions_import_file(
            path=job.stored_path, options=_options(job), progress=writer
        )
    except (CsvFormatError, ValueError) as problem:
        _finish(
            job_id, status=PurchaseImport.Status.FAILED, error=f"Nothing was imported: {problem}."
        )
    except FileNotFoundError:
        _finish(
            job_id,
            status=PurchaseImport.Status.FAILED,
            error="The uploaded file is gone (the server was cleaned up); upload it again.",
        )
    except Exception as problem:
        logger.exception("purchase import %s failed", job_id)
        if isinstance(problem, db.Error):
            connection.close()  # the next query connects again
        _finish(
            job_id,
            status=PurchaseImport.Status.FAILED,
            error=f"Nothing was imported: an unexpected error ({type(problem).__name__}).",
        )
    else:
        outcome = {
            "rows_read": report.rows_read,
            "invalid_rows": report.invalid_rows,
            "purchases_added": report.purchases_added,
            "customers_created": report.customers_created,
            "skipped_orders": report.skipped_orders,
            "rfm_customers": report.rfm_customers,
            "rfm_seconds": report.rfm_seconds,
            "source_id": report.file_id,
        }
        if report.written:
            _finish(job_id, status=PurchaseImport.Status.SUCCEEDED, **outcome)
        else:
            _finish(
                job_id,
                status=PurchaseImport.Status.FAILED,
                **outcome,
                error="Nothing was imported: the file has invalid rows.",
            )
    finally:
        heartbeat.stop()
        writer.close()
        Path(job.stored_path).unlink(missing_ok=True)
    return PurchaseImport.objects.get(id=job_id)


def _options(job: PurchaseImport) -> TransactionOptions:
    options = job.options or {}
    return TransactionOptions(
        column_names=tuple(options.get("columns") or ()),
        header_row=bool(options.get("header_row")),
        date_format=options.get("date_format") or None,
        skip_invalid=bool(options.get("skip_invalid")),
        file_name=job.file_name,
        user=job.created_by,
    )


def _finish(job_id: int, *, status: str, **fields) -> None:
    step = "Finished" if status == PurchaseImport.Status.SUCCEEDED else "Failed"
    progress = 100 if status == PurchaseImport.Status.SUCCEEDED else 0
    PurchaseImport.objects.filter(id=job_id).update(
        status=status, step=step, progress=progress, finished_at=timezone.now(), **fields
    )


class ProgressWriter:
    """The import's progress callback, writing at most twice a second.

    While the import's own transaction is open its writes are invisible to the status
    page, so on PostgreSQL they go through a second connection of their own; SQLite has
    one writer at a time, so there the bar waits at the start of the write phase."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0
        self.side = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.5 and phase != "rfm":
            return
        self.last = now
        start, end, step = PHASES.get(phase, (1, 99, phase))
        percent = int(start + (end - start) * min(1.0, done / total if total else 1.0))
        try:
            self._write(percent, step)
        except db.Error:
            logger.warning("progress of purchase import %s not written", self.job_id, exc_info=True)

    def _write(self, percent: int, step: str) -> None:
        if not connection.in_atomic_block:
            PurchaseImport.objects.filter(
                id=self.job_id, status=PurchaseImport.Status.RUNNING
            ).update(progress=percent, step=step)
            return
        if connection.vendor != "postgresql":
            return
        if self.side is None:
            self.side = connections.create_connection(DEFAULT_DB_ALIAS)
        with self.side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {PurchaseImport._meta.db_table} SET progress = %s, step = %s "
                "WHERE id = %s AND status = %s",
                [percent, step, self.job_id, PurchaseImport.Status.RUNNING],
            )

    def close(self) -> None:
        if self.side is not None:
            self.side.close()
