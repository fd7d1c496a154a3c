"""The lifetime-value pages: start a fit, follow it, read its parameters and chart, activate."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from django.core.management import call_command
from django.urls import reverse

from purchases.clv_services import clv_run_execute, clv_run_start
from purchases.models import ClvRun, CustomerValue
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(db):
    call_command("generate_customers", count=600, seed=8, stdout=io.StringIO())
    call_command("generate_transactions", seed=8, stdout=io.StringIO())


def fitted(**options) -> ClvRun:
    run = clv_run_start(enqueue=False, **options)
    return clv_run_execute(run_id=run.id)


def test_the_demo_history_settles_and_every_customer_gets_a_value(history):
    run = fitted()

    assert run.status == ClvRun.Status.SUCCEEDED, run.error
    assert 0 < run.parameters["a"] < 10 and 0 < run.parameters["b"] < 100
    assert CustomerValue.objects.count() == 600


def test_starting_a_fit_on_the_page_queues_it_for_a_worker(
    history, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client_for(manager).post(
            reverse("purchases:clv_start"), {"calibration_end": "2026-04-30", "horizon_days": 180}
        )

    run = ClvRun.objects.get()
    assert response.url == reverse("purchases:clv_run", args=[run.id])
    assert (run.status, str(run.calibration_end), run.horizon_days) == (
        "pending",
        "2026-04-30",
        180,
    )
    assert len(queued) == 1
    page = client_for(manager).get(response.url).content.decode()
    assert "Waiting for a worker" in page and 'hx-trigger="every 1s"' in page


def test_the_run_page_shows_parameters_the_check_and_the_cumulative_chart(history, marketer):
    run = fitted(calibration_end=date(2026, 4, 30))

    page = client_for(marketer).get(reverse("purchases:clv_run", args=[run.id])).content.decode()

    assert f"r = {run.parameters['r']:.3f}" in page
    assert "checked on the purchases after it" in page
    assert 'id="tracking-chart"' in page
    actual = re.search(r'<polyline points="([^"]+)"[^>]*class="actual"', page).group(1)
    predicted = re.search(r'<polyline points="([^"]+)"[^>]*class="predicted"', page).group(1)
    assert len(actual.split()) == len(run.holdout["weeks"]) == len(predicted.split())
    assert 'stroke-dasharray="4 4"' in page  # the calibration end
    assert "Make this the active model" not in page  # a marketer may look, not activate


def test_a_manager_activates_an_older_fit_with_its_own_parameters(history, manager):
    first = fitted(horizon_days=90)
    second = fitted(horizon_days=365)
    assert ClvRun.objects.get(is_active=True) == second
    next_year = CustomerValue.objects.order_by("pk").first().expected_purchases

    client_for(manager).post(reverse("purchases:clv_activate", args=[first.id]))

    first.refresh_from_db()
    assert first.is_active and first.activated_by == manager
    value = CustomerValue.objects.order_by("pk").first()
    assert value.run_id == first.id and value.expected_purchases < next_year
    assert ClvRun.objects.get(id=first.id).parameters == first.parameters  # not fitted again


def test_a_marketer_may_not_start_or_activate_a_fit(history, marketer):
    client = client_for(marketer)
    run = fitted()

    assert client.post(reverse("purchases:clv_start"), {"horizon_days": 365}).status_code == 403
    assert client.post(reverse("purchases:clv_activate", args=[run.id])).status_code == 403
    assert client.get(reverse("purchases:clv_runs")).status_code == 200


def test_a_calibration_end_after_the_history_is_refused_with_the_reason(history):
    run = fitted(calibration_end=date(2030, 1, 1))

    assert run.status == ClvRun.Status.FAILED
    assert "must be before the last purchase" in run.error
