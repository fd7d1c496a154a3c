"""The history of training runs and one run's details."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clustering.models import TrainingRun
from tests.browser.helpers import sign_in
from tests.clustering.helpers import train

pytestmark = pytest.mark.services


def test_the_runs_page_lists_the_run_and_its_details(page, trained, marketer, screenshot):
    sign_in(page, marketer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Training runs")
    row = page.locator("#runs-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_have_class("active-run")
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text(f"Run {trained.id} active")
    expect(cells.nth(1)).to_have_text("Succeeded")
    expect(cells.nth(2)).to_have_text("Age, Annual income (k), Spending score, Purchases per year")
    expect(cells.nth(3)).to_have_text("K-Means")
    expect(cells.nth(4)).to_have_text("4")
    expect(cells.nth(7)).to_have_text("600")
    expect(cells.nth(9)).to_contain_text("by command line")
    expect(cells.nth(10)).to_contain_text("by command line")
    expect(cells.nth(10).locator("time")).to_have_attribute("title", re.compile("ago|now"))
    screenshot(page, "list")

    row.get_by_role("link", name=f"Run {trained.id}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Run {trained.id} active model")
    per_k = page.locator("#per-k tbody tr")
    expect(per_k).to_have_count(len(trained.k_values))
    expect(page.locator("#per-k tr.chosen")).to_contain_text("4 (chosen)")
    expect(page.locator("#run-clusters tbody tr")).to_have_count(4)
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-elbow'))")
    assert page.js_errors == []
    screenshot(page, "detail")


def test_activating_an_earlier_run_asks_first_and_says_who_did_it(
    page, trained, manager, screenshot
):
    newer = train(k=3)
    sign_in(page, manager)
    page.goto(f"/runs/{trained.id}/")
    form = page.locator("#activate-form")
    expect(form).to_contain_text(f"instead of run {newer.id} (3 segments")

    form.get_by_role("button", name="Make this the active model").click()  # box not ticked

    assert TrainingRun.objects.get(is_active=True) == newer
    expect(page).to_have_url(re.compile(rf"/runs/{trained.id}/$"))
    form.get_by_label(f"Yes, make run {trained.id} the active model").check()
    screenshot(page, "confirm")
    with page.expect_navigation():
        form.get_by_role("button", name="Make this the active model").click()

    expect(page.locator(".messages")).to_contain_text(f"Run {trained.id} is now the active model.")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Run {trained.id} active model")
    expect(page.locator("#run-activated")).to_contain_text("by max")
    trained.refresh_from_db()
    assert trained.is_active and trained.activated_by == manager

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    active_row = page.locator("#runs-table tr.active-run")
    expect(active_row).to_contain_text(f"Run {trained.id}")
    expect(active_row.locator("td.run-activated")).to_contain_text("by max")
    assert page.js_errors == []


def test_the_compare_page_opens_on_the_active_run_against_the_one_before(
    page, trained, marketer, screenshot
):
    two_features = train(k=3, features=("annual_income", "spending_score"))
    sign_in(page, marketer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()

    page.get_by_role("link", name="Compare two runs").click()

    expect(page.get_by_label("From")).to_have_value(str(trained.id))
    expect(page.get_by_label("to", exact=True)).to_have_value(str(two_features.id))
    expect(page.get_by_text("Choose two different runs")).to_have_count(0)
    expect(page.locator("#moves")).to_be_visible()
    note = page.locator("#different-features")
    expect(note).to_contain_text("trained on different features")
    expect(note).to_contain_text("silhouettes are not comparable")
    screenshot(page)
    assert page.js_errors == []
