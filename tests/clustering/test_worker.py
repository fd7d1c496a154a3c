"""Training through a real Celery worker process (Redis in CI)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.core.management import call_command

from clustering.models import TrainingRun
from clustering.services import TrainingParams, training_run_start
from tests.clustering.helpers import running_run
from tests.conftest import require_broker


def wait_for(run: TrainingRun, timeout: float = 120) -> TrainingRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run.id} still {run.status} ({run.step}) after {timeout} s")


def test_worker_trains_a_queued_run_and_activates_it(celery_worker):
    call_command("generate_customers", count=800, seed=3)

    run = wait_for(training_run_start(params=TrainingParams()))

    assert run.status == TrainingRun.Status.SUCCEEDED, (
        run.error,
        celery_worker.log_path.read_text()[-2000:],
    )
    assert run.is_active
    assert run.chosen_k == 4
    names = set(run.clusters.values_list("segment__name", flat=True))
    assert names == {
        "High-Value Customers",
        "Budget Shoppers",
        "Potential Targets",
        "Loyal Customers",
    }


def test_train_command_waits_for_the_worker_and_prints_the_summary(celery_worker):
    import io
    import json

    call_command("generate_customers", count=600, seed=4)
    out = io.StringIO()

    call_command("train", wait=True, json=True, k=3, timeout=120, stdout=out)

    summary = json.loads(out.getvalue())
    assert summary["status"] == "succeeded"
    assert summary["k"] == 3
    assert len(summary["clusters"]) == 3
    assert sum(cluster["size"] for cluster in summary["clusters"]) == summary["customers_used"]


def test_the_worker_s_schedule_fails_a_silent_run_without_anyone_looking(
    transactional_db, monkeypatch, tmp_path
):
    """`make run` starts the worker with Celery beat, which sends the reaper every minute."""
    from tests.worker import start_worker, stop_worker

    require_broker()
    monkeypatch.setenv("CLUSTERING_REAP_SECONDS", "1")
    monkeypatch.setenv("CLUSTERING_HEARTBEAT_TIMEOUT", "60")
    silent = running_run(silent_for=timedelta(minutes=5))
    beat = ("--beat", "--schedule", str(tmp_path / "beat-schedule"))
    worker = start_worker(tmp_path / "worker.log", *beat)
    try:
        deadline = time.monotonic() + 30
        while silent.status != TrainingRun.Status.FAILED and time.monotonic() < deadline:
            time.sleep(0.3)
            silent.refresh_from_db()
    finally:
        stop_worker(worker)

    assert silent.status == TrainingRun.Status.FAILED, worker.log_path.read_text()[-2000:]
    assert "stopped responding" in silent.error
