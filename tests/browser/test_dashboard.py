"""The dashboard a marketer lands on: segment cards, the model line and the charts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.helpers import SEGMENT_NAMES, segment_card, sign_in

pytestmark = pytest.mark.services

CHARTS = {
    "chart-elbow": "line",
    "chart-silhouette": "line",
    "chart-sizes": "bar",
    "chart-projection": "scatter",
}
CHART_TYPES = """ids => ids.map(id => {
    const chart = window.Chart && Chart.getChart(document.getElementById(id));
    return chart ? chart.config.type : null;
})"""


def test_a_marketer_signs_in_and_sees_the_segments_charts_and_tables(
    page, trained, marketer, screenshot
):
    sign_in(page, marketer)

    headings = page.locator(".cards article.card h3")
    expect(headings).to_have_count(4)
    assert set(headings.all_inner_texts()) == SEGMENT_NAMES
    for name in SEGMENT_NAMES:
        card = segment_card(page, name)
        expect(card.locator(".size")).to_contain_text(re.compile(r"\d+ customers"))
        expect(card.get_by_role("heading", name="Strategy")).to_be_visible()
        assert card.locator(".strategy li").count() >= 2, f"{name} has no action list"

    model_line = page.locator(".model-line")
    expect(model_line).to_contain_text("4 segments from 600 customers")
    expect(model_line).to_contain_text(re.compile(r"silhouette \d\.\d\d"))
    expect(model_line).to_contain_text(re.compile(r"stability \d\.\d\d"))
    expect(model_line.get_by_role("link", name=f"run {trained.id}")).to_be_visible()

    page.wait_for_function(f"({CHART_TYPES})({list(CHARTS)}).every(Boolean)")
    assert page.evaluate(CHART_TYPES, list(CHARTS)) == list(CHARTS.values())
    for canvas_id in CHARTS:
        box = page.locator(f"#{canvas_id}").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100, (canvas_id, box)

    per_k = page.locator("#table-per-k")
    expect(per_k).to_be_hidden()
    page.get_by_text("Show the numbers as tables").click()
    expect(per_k).to_be_visible()
    expect(per_k.locator("tbody tr")).to_have_count(len(trained.k_values))
    expect(per_k.locator("tr.chosen")).to_contain_text("4 (chosen)")
    expect(page.locator("#table-sizes tbody tr")).to_have_count(4)
    assert page.js_errors == []
    screenshot(page)


def test_the_dashboard_fits_a_phone_screen(new_page, trained, marketer, screenshot):
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, marketer)
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-sizes'))")

    expect(page.locator(".cards article.card")).to_have_count(4)
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    screenshot(page, "phone-top", full_page=False)
    screenshot(page, "phone")
    assert widths[0] <= widths[1], f"the page scrolls sideways on a phone: {widths}"
    assert page.js_errors == []
