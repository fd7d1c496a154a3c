"""Training through a real Celery worker process (Redis in CI)."""

from __future__ import annotations

import time

from django.core.management import call_command

from clustering.models import TrainingRun
from clustering.services import TrainingParams, training_run_start


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
