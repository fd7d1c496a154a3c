"""The dashboard a marketer lands on: segment cards, the model line and the charts."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from clustering.models import ClusterAssignment
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


@pytest.fixture
def trained_with_gaps(transactional_db):
    """The demo customers, 25 more without a purchase count and 3 far outside the rest."""
    from clustering.models import TrainingRun
    from customers.models import Customer

    call_command("generate_customers", count=600, seed=1, stdout=io.StringIO())
    common = {"age": 40, "annual_income": 60, "spending_score": 50}
    Customer.objects.bulk_create(
        Customer(customer_id=f"GAP-{i:02d}", purchase_frequency=None, **common) for i in range(25)
    )
    Customer.objects.bulk_create(
        Customer(
            customer_id=f"FAR-{i}",
            age=45,
            annual_income=9_000 + i,
            spending_score=99,
            purchase_frequency=9_000,
        )
        for i in range(3)
    )
    call_command("train", sync=True, stdout=io.StringIO())
    return TrainingRun.objects.get(is_active=True)


def test_the_dashboard_says_who_is_in_no_segment_and_why(page, trained_with_gaps, marketer):
    run = trained_with_gaps
    assert (run.customers_excluded, run.outliers) == (25, 3)
    sign_in(page, marketer)

    coverage = page.locator("#run-coverage")
    expect(coverage).to_have_text(
        "25 customers are in no segment because they have no value for Purchases per year "
        "(25 customers); 3 customers far outside the rest were not used to fit the segment "
        "centres, but are still assigned to the nearest segment and flagged unusual; "
        "Annual income (k) and Purchases per year were read on a log scale."
    )

    # The customers far outside the rest are in a segment, marked as unusual.
    cluster = run.clusters.get(assignments__customer__customer_id="FAR-0")
    page.goto(f"/segments/{cluster.segment_id}/?q=FAR-")
    rows = page.locator("#members-table tbody tr")
    expect(rows).to_have_count(3)
    for i in range(3):
        expect(rows.nth(i).locator(".badge", has_text="unusual")).to_be_visible()
    # ... and the badge follows the flag, row by row, on a page of ordinary members.
    page.goto(f"/segments/{cluster.segment_id}/")
    expect(rows).to_have_count(min(cluster.size, 50))
    flagged = set(
        ClusterAssignment.objects.filter(run=run, unusual=True).values_list(
            "customer__customer_id", flat=True
        )
    )
    for row in rows.all():
        customer_id = row.locator("td").first.inner_text()
        badges = row.locator(".badge", has_text="unusual").count()
        assert badges == (customer_id in flagged), customer_id

    page.goto(f"/runs/{run.id}/")
    expect(page.locator("#run-outliers")).to_contain_text("3 far outside the rest")
    expect(page.locator("#run-log-features")).to_contain_text(
        "Annual income (k), Purchases per year"
    )
    expect(page.locator("#run-missing")).to_have_text("Leave them out of the segmentation")
    expect(page.locator("#run-coverage")).to_be_visible()
    assert page.js_errors == []


def test_the_dashboard_has_no_coverage_sentence_when_every_customer_fits(page, trained, marketer):
    sign_in(page, marketer)

    expect(page.locator(".model-line")).to_be_visible()
    expect(page.locator("#run-coverage")).to_have_count(0)
