"""The CLV fit through a real Celery worker process, from the command and from the page."""

from __future__ import annotations

import io
import json
import time

from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from purchases.models import ClvRun, CustomerValue


def wait_for(run: ClvRun, timeout: float = 120) -> ClvRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            return run
        time.sleep(0.3)
    raise AssertionError(f"CLV run {run.id} still {run.status} ({run.step}) after {timeout} s")


def test_the_clv_command_queues_the_fit_and_prints_what_the_worker_fitted(celery_worker):
    call_command("generate_customers", count=500, seed=9, stdout=io.StringIO())
    call_command("generate_transactions", seed=9, stdout=io.StringIO())
    out = io.StringIO()

    call_command("clv", "--calibration-end", "2026-05-31", "--json", "--timeout", "120", stdout=out)

    summary = json.loads(out.getvalue())
    assert summary["status"] == "succeeded", celery_worker.log_path.read_text()[-2000:]
    assert set(summary["parameters"]) == {"r", "alpha", "a", "b", "p", "q", "v"}
    assert summary["holdout"]["total_actual"] > 0
    run = ClvRun.objects.get(id=summary["run_id"])
    assert run.is_active and run.progress == 100 and run.tracking["weeks"]
    assert CustomerValue.objects.filter(run=run).count() == 500


def test_a_fit_started_on_the_page_is_fitted_by_the_worker(celery_worker, make_user):
    call_command("generate_customers", count=400, seed=10, stdout=io.StringIO())
    call_command("generate_transactions", seed=10, stdout=io.StringIO())
    client = Client()
    client.force_login(make_user("max", "Marketing managers"))

    response = client.post(reverse("purchases:clv_start"), {"horizon_days": 365})

    run = wait_for(ClvRun.objects.get())
    assert run.status == ClvRun.Status.SUCCEEDED, (
        run.error,
        celery_worker.log_path.read_text()[-2000:],
    )
    assert run.is_active and run.activated_by.username == "max"
    page = client.get(response.url).content.decode()
    assert 'id="tracking-chart"' in page and 'hx-trigger="every 1s"' not in page
