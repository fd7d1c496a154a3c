"""A compare retrain from the dashboard through a real worker, then activating another
algorithm than the recommended one from its run page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clustering import algorithms
from clustering.models import TrainingRun
from tests.browser.helpers import sign_in

pytestmark = pytest.mark.services


def test_a_manager_compares_algorithms_and_activates_one_that_was_not_recommended(
    page, trained, manager, celery_worker, screenshot
):
    sign_in(page, manager)
    panel = page.locator("#retrain-panel")
    panel.get_by_label("Algorithm").select_option(label="Compare them all and recommend one")
    panel.get_by_role("button", name="Retrain now").click()

    expect(page.locator("#run-status")).to_contain_text(
        re.compile(r"A new model is active|failed"), timeout=120_000
    )
    compare = (
        TrainingRun.objects.filter(algorithm_requested__in=algorithms.ALGORITHMS)
        .exclude(id=trained.id)
        .get(comparison_of=None)
    )
    assert compare.status == TrainingRun.Status.SUCCEEDED, (
        compare.error,
        celery_worker.log_path.read_text()[-2000:],
    )
    page.goto(f"/runs/{compare.id}/")
    table = page.locator("#algorithm-comparison")
    expect(table).to_contain_text(algorithms.RECOMMENDATION_RULE)
    expect(table.locator("tbody tr")).to_have_count(len(algorithms.LABELS))
    expect(table.locator("tr.chosen")).to_have_count(1)
    expect(table.locator("tr.chosen")).to_contain_text("recommended")
    screenshot(page, "compare")

    # Another algorithm than K-Means and than the recommended one.
    rows = "tbody tr:not(.chosen):not([data-algorithm=kmeans]):not([data-algorithm=ensemble])"
    other = table.locator(rows).first
    label = other.locator("th").inner_text().strip()
    other.get_by_role("link").click()
    expect(page.locator("#run-algorithm")).to_contain_text(label)
    form = page.locator("#activate-form")
    form.get_by_label(re.compile(r"Yes, make run \d+ the active model")).check()
    with page.expect_navigation():
        form.get_by_role("button", name="Make this the active model").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("active model")
    chosen = TrainingRun.objects.get(is_active=True)
    assert chosen.comparison_of_id == compare.id
    assert algorithms.LABELS[chosen.algorithm_requested] == label
    page.goto("/")
    expect(page.locator("#model-algorithm")).to_contain_text(label)
    assert page.js_errors == []
    screenshot(page, "activated")
