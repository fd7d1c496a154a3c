"""Runs that must not stay stuck: the worker's database connection dropped while it reads
customers (PostgreSQL's pg_terminate_backend), and a queue message lost with the broker
(the worker stopped, the queue emptied), found again by a starting worker and by beat.
Real Celery workers on the test database and the configured broker."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.functions import Now

from clustering.models import TrainingRun
from clustering.services import TrainingParams, training_run_start
from customers.models import Customer
from tests.conftest import require_broker, require_service
from tests.hardening.conftest import train
from tests.worker import start_worker, stop_worker
from tests.worker import test_database_url as worker_database_url


@pytest.fixture
def workers(transactional_db, monkeypatch, tmp_path):
    """workers(*options) starts a real Celery worker (beating every 0.5 s); all are stopped."""
    require_broker()
    monkeypatch.setenv("CLUSTERING_HEARTBEAT_SECONDS", "0.5")
    started = []

    def start(*options: str):
        process = start_worker(tmp_path / f"worker-{len(started)}.log", *options)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            stop_worker(process)


def wait_until(run: TrainingRun, condition, what: str, timeout: float) -> TrainingRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if condition(run):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run.id} never {what}: {run.status}, {run.step}, {run.error}")


def generate(count: int, seed: int = 5) -> None:
    call_command("generate_customers", count=count, seed=seed, stdout=io.StringIO())


# --- The database connection drops while a run reads customers -------------------------------


def backend_waiting_for_a_lock(watcher) -> int | None:
    row = watcher.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    return row[0] if row else None


@pytest.mark.postgres
def test_a_connection_lost_while_reading_customers_fails_the_run_at_once_with_the_reason(
    workers, settings
):
    require_service(connection.vendor == "postgresql", "PostgreSQL")
    generate(600)
    previous = train(k=4)
    worker = workers()
    url = worker_database_url()
    # The run's read waits behind this lock, so the connection is cut while it reads.
    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as watcher:
        blocker.execute(f"LOCK TABLE {Customer._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        run = training_run_start(params=TrainingParams(k=4))
        run = wait_until(run, lambda r: r.step == "Reading customers", "read", timeout=60)
        deadline = time.monotonic() + 30
        while (pid := backend_waiting_for_a_lock(watcher)) is None:
            assert time.monotonic() < deadline, "the run never waited to read the customers"
            time.sleep(0.05)
        cut = time.monotonic()
        watcher.execute("SELECT pg_terminate_backend(%s)", [pid])
        blocker.rollback()

    # Failed at once (not after the two-minute heartbeat timeout), saying why.
    run = wait_until(run, lambda r: r.is_finished, "finished", timeout=20)
    waited = time.monotonic() - cut
    assert run.status == TrainingRun.Status.FAILED, worker.log_path.read_text()[-3000:]
    assert waited < 15
    assert "lost its connection to the database while reading customers" in run.error
    assert "stopped responding" not in run.error
    assert run.in_flight is None
    previous.refresh_from_db()
    assert previous.is_active

    # Nothing is blocked: the same worker trains the next run.
    retrain = wait_until(
        training_run_start(params=TrainingParams(k=4)), lambda r: r.is_finished, "ran", 90
    )
    assert retrain.status == TrainingRun.Status.SUCCEEDED, retrain.error
    assert retrain.is_active


# --- A queue message lost with the broker -----------------------------------------------------


def queue_purge() -> int:
    """Empty the training queue, as a Redis restart without persistence does."""
    from segmentation_site.celery import app

    return app.control.purge()


def waiting_since(run: TrainingRun, seconds: float) -> TrainingRun:
    TrainingRun.objects.filter(id=run.id).update(created_at=Now() - timedelta(seconds=seconds))
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("message", ["lost", "kept"])
def test_a_starting_worker_sends_a_waiting_run_again(workers, message):
    generate(300)
    run = training_run_start(params=TrainingParams(k=3))  # queued; no worker is running
    if message == "lost":
        assert queue_purge() >= 1
    waiting_since(run, 90)

    worker = workers()

    run = wait_until(run, lambda r: r.is_finished, "finished", timeout=60)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.resent_at is not None
    log = worker.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert TrainingRun.objects.count() == 1


def test_beat_sends_a_run_again_whose_message_was_lost_while_the_worker_runs(workers, monkeypatch):
    generate(300)
    monkeypatch.setenv("CLUSTERING_REAP_SECONDS", "1")
    worker = workers("--beat")
    run = training_run_start(params=TrainingParams(k=3), enqueue=False)  # the message: lost
    waiting_since(run, 90)

    run = wait_until(run, lambda r: r.is_finished, "finished", timeout=60)

    assert run.status == TrainingRun.Status.SUCCEEDED, worker.log_path.read_text()[-3000:]
    assert run.resent_at is not None
