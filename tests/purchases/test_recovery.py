"""Purchase imports and CLV fits survive a worker that dies and a queue message that is lost:
real Celery worker processes, killed with SIGKILL in the middle of an import."""

from __future__ import annotations

import io
import os
import random
import signal
import time
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from purchases.clv_services import clv_run_start
from purchases.import_jobs import import_dir, purchase_import_start
from purchases.models import ClvRun, Purchase, PurchaseImport
from tests.conftest import require_broker
from tests.worker import start_worker, stop_worker

ROWS = 400_000  # long enough (several seconds) for the worker to be killed mid-import
OPTIONS = {"columns": ["customer_id", "date", "quantity", "amount"], "header_row": False}


def order_log(path: Path, rows: int) -> Path:
    """A headerless, whitespace-separated order log: customer, yyyymmdd, quantity, amount."""
    pick = random.Random(7)
    lines = (
        f"{pick.randint(1, 5_000)} 2025{pick.randint(1, 12):02d}{pick.randint(1, 28):02d} "
        f"{pick.randint(1, 4)} {pick.randint(100, 9_999) / 100:.2f}\n"
        for _ in range(rows)
    )
    path.write_text("".join(lines))
    return path


def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in {timeout} s")


def status_of(job: PurchaseImport) -> str:
    job.refresh_from_db()
    return job.status


def kill_worker(worker) -> None:
    """SIGKILL the process doing the work and then its parent: nothing gets to clean up."""
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    worker.kill()
    worker.wait()
    worker.log_file.close()


def test_an_import_whose_worker_is_killed_fails_with_nothing_imported_and_imports_again(
    transactional_db, settings, monkeypatch, tmp_path, make_user
):
    require_broker()
    monkeypatch.setenv("CLUSTERING_HEARTBEAT_SECONDS", "0.5")  # the worker's beat
    settings.CLUSTERING_HEARTBEAT_TIMEOUT = 4  # the page's reaper
    user = make_user("max", "Marketing managers")
    client = Client()
    client.force_login(user)
    upload = order_log(tmp_path / "orders.log", ROWS)

    worker = start_worker(tmp_path / "worker.log")
    try:
        job = purchase_import_start(path=upload, file_name="orders.log", options=OPTIONS, user=user)
        wait_until(lambda: status_of(job) == PurchaseImport.Status.RUNNING, "the claim")
        time.sleep(1.5)  # well inside the import
        assert status_of(job) == PurchaseImport.Status.RUNNING, job.error
    finally:
        kill_worker(worker)

    status_url = reverse("purchases:import_status", args=[job.id])
    wait_until(
        lambda: "stopped while importing" in client.get(status_url).content.decode(),
        "the reaper marking the import failed",
        timeout=30,
    )
    job.refresh_from_db()
    assert job.status == PurchaseImport.Status.FAILED
    assert job.error.startswith("The worker stopped while importing this file")
    page = client.get(status_url).content.decode()
    assert "nothing was imported. Import it again." in page and 'id="import-again"' in page
    assert Purchase.objects.count() == 0 and not Customer.objects.exists()  # all or nothing

    settings.CLUSTERING_HEARTBEAT_TIMEOUT = 120  # a SQLite import holds its heartbeat back
    worker = start_worker(tmp_path / "worker-again.log")  # (a starting worker purges its queue)
    try:
        response = client.post(reverse("purchases:import_retry", args=[job.id]))
        again = PurchaseImport.objects.exclude(id=job.id).get()
        assert response.url == reverse("purchases:import_status", args=[again.id])
        assert again.retry_of_id == job.id
        # A second click finds nothing left to import: the file was handed over once.
        client.post(reverse("purchases:import_retry", args=[job.id]))
        assert PurchaseImport.objects.count() == 2
        wait_until(lambda: status_of(again) in ("succeeded", "failed"), "the import", 300)
    finally:
        stop_worker(worker)
    assert again.status == PurchaseImport.Status.SUCCEEDED, (
        again.error,
        worker.log_path.read_text()[-2000:],
    )
    assert Purchase.objects.count() == ROWS
    assert not any(import_dir().iterdir())  # the kept file is gone once imported


def test_a_clv_fit_whose_queue_message_was_lost_is_sent_again_by_a_starting_worker(
    transactional_db, tmp_path
):
    require_broker()
    call_command("generate_customers", count=300, seed=3, stdout=io.StringIO())
    call_command("generate_transactions", seed=3, stdout=io.StringIO())
    run = clv_run_start(enqueue=False)  # recorded, but its message never reached a broker
    ClvRun.objects.filter(id=run.id).update(created_at=timezone.now() - timedelta(minutes=2))

    worker = start_worker(tmp_path / "worker.log")
    try:
        wait_until(lambda: ClvRun.objects.get(id=run.id).is_finished, "the re-sent fit", 120)
    finally:
        stop_worker(worker)

    run.refresh_from_db()
    assert run.status == ClvRun.Status.SUCCEEDED, (run.error, worker.log_path.read_text()[-2000:])
    assert run.resent_at is not None and run.is_active


def test_the_worker_s_schedule_fails_a_silent_clv_fit_and_an_unclaimed_import(
    transactional_db, settings, monkeypatch, tmp_path, make_user
):
    """Nobody looks at either page: Celery beat in the worker sends the reaper."""
    require_broker()
    monkeypatch.setenv("CLUSTERING_REAP_SECONDS", "1")
    monkeypatch.setenv("CLUSTERING_HEARTBEAT_TIMEOUT", "60")
    monkeypatch.setenv("CLUSTERING_PENDING_TIMEOUT", "600")
    long_ago = timezone.now() - timedelta(minutes=20)
    silent = ClvRun.objects.create(status=ClvRun.Status.RUNNING, step="Fitting")
    ClvRun.objects.filter(id=silent.id).update(heartbeat_at=long_ago)
    kept = order_log(import_dir() / "kept.log", 10)
    unclaimed = PurchaseImport.objects.create(
        file_name="orders.log", stored_path=str(kept), options=OPTIONS
    )
    PurchaseImport.objects.filter(id=unclaimed.id).update(created_at=long_ago)

    beat = ("--beat", "--schedule", str(tmp_path / "beat-schedule"))
    worker = start_worker(tmp_path / "worker.log", *beat)
    try:
        wait_until(
            lambda: (
                ClvRun.objects.get(id=silent.id).is_finished
                and status_of(unclaimed) == PurchaseImport.Status.FAILED
            ),
            "the scheduled reap",
            30,
        )
    finally:
        stop_worker(worker)

    silent.refresh_from_db()
    assert silent.status == ClvRun.Status.FAILED and "stopped responding" in silent.error
    assert unclaimed.error.startswith("No worker picked up this import in time")
    client = Client()
    client.force_login(make_user("max", "Marketing managers"))
    page = client.get(reverse("purchases:import_status", args=[unclaimed.id])).content.decode()
    assert 'id="import-again"' in page  # its file is still there to import again
