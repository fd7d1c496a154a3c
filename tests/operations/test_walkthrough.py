"""The issue's "done when", as a manager and a marketer would go through it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from clustering.models import TrainingRun
from clustering.services import training_run_claim, training_run_execute
from customers.demo_data import generate
from customers.models import Customer
from operations.models import PredictionRecord, Schedule, ScheduledRun
from operations.tasks import heartbeat_task
from tests.clustering.conftest import client_for
from tests.clustering.helpers import make_customers, train

pytestmark = pytest.mark.django_db


def shifted_file(path, count: int) -> str:
    """Customers of the demo population who all earn 60 thousand more."""
    columns = generate(count, 11)
    lines = ["CustomerID,Age,Annual Income (k$),Spending Score (1-100),Purchase Frequency,Gender"]
    for i in range(count):
        lines.append(
            f"SHIFT-{i},{columns['age'][i]},{columns['annual_income'][i] + 60:.1f},"
            f"{columns['spending_score'][i]},{columns['purchase_frequency'][i]},"
            f"{columns['sex'][i]}"
        )
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_manager_and_a_marketer_keep_the_segments_current(
    make_user, mailoutbox, django_capture_on_commit_callbacks, tmp_path
):
    make_customers(600, seed=7)
    first = train(k=4)
    manager = make_user("max", "Marketing managers", email="max@example.com")
    marketer = make_user("mia", "Marketing")
    boss, staff = client_for(manager), client_for(marketer)

    # A monthly schedule, activated only if not worse.
    response = boss.post(
        "/operations/schedules/new/",
        {"name": "Monthly", "enabled": "on", "kind": "monthly", "activation": "not_worse",
         "k": 4, "k_min": 2, "k_max": 10, "missing": "exclude"},
    )  # fmt: skip
    assert response.status_code == 302
    schedule = Schedule.objects.get()

    # Customers from a shifted population arrive; the worker's heartbeat measures drift.
    call_command("import_customers", shifted_file(tmp_path / "new.csv", 600), stdout=io.StringIO())
    assert Customer.objects.count() == 1200
    with django_capture_on_commit_callbacks(execute=True):
        heartbeat_task()
    dashboard = boss.get("/").content.decode()
    assert f"Customers have shifted since run {first.id}" in dashboard
    assert "Annual income (k)</strong> is higher than at training" in dashboard
    assert any(m.subject == f"Customers have shifted since run {first.id}" for m in mailoutbox)

    # The manager starts the schedule early; the worker trains it and tells them.
    response = boss.post(f"/operations/schedules/{schedule.id}/run/")
    link = ScheduledRun.objects.get(schedule=schedule)
    assert response.url == f"/runs/{link.run_id}/"
    assert training_run_claim(run_id=link.run_id)
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_execute(run_id=link.run_id)
        heartbeat_task()
    assert run.status == TrainingRun.Status.SUCCEEDED
    link.refresh_from_db()
    assert link.outcome in (ScheduledRun.Outcome.ACTIVATED, ScheduledRun.Outcome.WAITING)
    subjects = [m.subject for m in mailoutbox]
    assert any(s.startswith(f"Run {run.id} finished") for s in subjects), subjects

    # A marketer finds yesterday's predictions, and a customer's history.
    staff.post(
        "/predict/",
        {"age": 30, "annual_income": 90, "spending_score": 80, "purchase_frequency": 20},
    )
    PredictionRecord.objects.update(created_at=timezone.now() - timedelta(days=1))
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    history = staff.get(f"/operations/predictions/?since={yesterday}&until={yesterday}")
    assert "(1 predictions)" in history.content.decode()
    customer = Customer.objects.get(customer_id="DEMO-0000001")
    page = staff.get(f"/customers/{customer.pk}/").content.decode()
    # Both runs placed this customer: the page lists each, newest first.
    assert page.index(f"run {run.id}</a>") < page.index(f"run {first.id}</a>")
