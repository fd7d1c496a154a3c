"""The history of training runs and one run's details."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import sign_in

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
    expect(cells.nth(2)).to_have_text("4")
    expect(cells.nth(5)).to_have_text("600")
    expect(cells.nth(7)).to_have_text("command line")
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
