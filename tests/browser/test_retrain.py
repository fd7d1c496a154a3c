"""Retraining from the dashboard: progress from a real Celery worker, and who may do it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from clustering.models import TrainingRun
from tests.browser.helpers import sign_in

pytestmark = pytest.mark.services

POST_START = """async () => {
    const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    const body = new URLSearchParams([
        ["mode", "fixed"], ["k", "3"], ["k_min", "2"], ["k_max", "10"],
        ["features", "age"], ["features", "annual_income"],
        ["missing", "exclude"], ["log_mode", "auto"],
    ]);
    const response = await fetch("/runs/start/", {
        method: "POST", body: body, headers: {"X-CSRFToken": token, "HX-Request": "true"},
    });
    return {status: response.status, text: await response.text()};
}"""


def test_a_manager_retrains_and_watches_it_finish(
    page, trained, manager, celery_worker, screenshot
):
    sign_in(page, manager)
    panel = page.locator("#retrain-panel")
    expect(panel.locator("#run-status")).to_contain_text(f"run {trained.id} succeeded")

    panel.get_by_label("Use a fixed number of segments").check()
    panel.get_by_role("spinbutton", name="Number of segments").fill("3")
    panel.get_by_role("button", name="Retrain now").click()

    status = page.locator("#run-status")
    expect(status).to_contain_text("Run ", timeout=5_000)
    new_run = TrainingRun.objects.exclude(id=trained.id).get()
    try:
        expect(status.locator("progress")).to_be_attached(timeout=5_000)
        screenshot(page, "progress")
    except PlaywrightTimeout:
        # A fast worker may finish before the first look: the run must be done then.
        new_run.refresh_from_db()
        assert new_run.is_finished, f"no progress bar while run {new_run.id} is {new_run.status}"

    # When the run finishes the status poll answers HX-Refresh and the page reloads itself.
    finished = re.compile(rf"run {new_run.id}\)? (succeeded|failed)")
    expect(page.locator("#run-status")).to_contain_text(finished, timeout=90_000)
    new_run.refresh_from_db()
    assert new_run.status == TrainingRun.Status.SUCCEEDED, (
        new_run.error,
        celery_worker.log_path.read_text()[-2000:],
    )
    model_line = page.locator(".model-line")
    expect(model_line).to_contain_text(f"run {new_run.id}")
    expect(model_line).to_contain_text("3 segments from 600 customers")
    expect(page.locator(".cards article.card")).to_have_count(3)
    expect(page.locator("#run-status")).to_contain_text(
        f"run {new_run.id} succeeded with 3 segments and is the active model"
    )
    assert new_run.created_by == manager
    assert page.js_errors == []
    screenshot(page, "finished")


def test_a_marketer_without_permission_cannot_retrain(page, trained, marketer):
    sign_in(page, marketer)

    expect(page.get_by_role("heading", name="Place a new customer")).to_be_visible()
    expect(page.get_by_role("button", name="Retrain now")).to_have_count(0)
    expect(page.locator("#retrain-panel")).to_have_count(0)

    answer = page.evaluate(POST_START)

    assert answer["status"] == 403
    assert "You do not have permission for this page." in answer["text"]
    assert "CSRF verification failed" not in answer["text"], "refused for the token instead"
    assert list(TrainingRun.objects.values_list("id", flat=True)) == [trained.id]
