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


# --------------------------------------------------------------------------- colours and layout

CARD_HEADINGS = """() => [...document.querySelectorAll('.cards article.card h3')]
    .map(h => h.innerText)"""
SIZES = """() => {
    const chart = Chart.getChart(document.getElementById('chart-sizes'));
    return {labels: chart.data.labels, colours: chart.data.datasets[0].backgroundColor};
}"""
MAP_SHAPES = """() => Chart.getChart(document.getElementById('chart-projection'))
    .data.datasets.map(d => [d.label, d.pointStyle])"""


def rows_of(boxes: list[dict]) -> list[list[dict]]:
    """Boxes grouped by the row they sit on (same top)."""
    rows: dict[int, list[dict]] = {}
    for box in boxes:
        rows.setdefault(round(box["y"]), []).append(box)
    return [rows[top] for top in sorted(rows)]


def test_each_segment_has_one_colour_and_marker_on_its_card_and_in_the_charts(
    page, trained, marketer, screenshot
):
    sign_in(page, marketer)
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-sizes'))")

    headings = page.evaluate(CARD_HEADINGS)
    sizes = page.evaluate(SIZES)
    assert sizes["labels"] == headings, "the sizes chart is not in the cards' order"
    for name, colour in zip(headings, sizes["colours"]):
        card = segment_card(page, name)
        assert card.get_attribute("data-colour") == colour
        expect(card.locator(".card-stripe rect")).to_have_attribute("fill", colour)
        expect(card.locator(".card-head .swatch [fill]")).to_have_attribute("fill", colour)
    shapes = dict(page.evaluate(MAP_SHAPES))
    assert len(set(shapes.values())) == 4, shapes  # four segments, four markers
    for name, shape in shapes.items():
        swatch = segment_card(page, name).locator(".card-head .swatch")
        expect(swatch).to_have_attribute("data-shape", shape)
    assert page.js_errors == []
    screenshot(page, full_page=False)


def test_differences_from_the_average_are_neither_red_nor_green(page, trained, marketer):
    sign_in(page, marketer)
    table = segment_card(page, "Budget Shoppers").locator("table.compare")

    colours = table.evaluate(
        """t => [...t.querySelectorAll('td')].map(td => getComputedStyle(td).color)"""
    )
    marked = table.locator("td.higher, td.lower")
    assert marked.count() >= 2
    assert set(colours) == {page.evaluate("getComputedStyle(document.body).color")}
    expect(marked.first.locator(".arrow")).to_have_text(re.compile("^[▲▼]$"))


def test_no_card_stands_alone_on_the_last_row(page, trained, marketer, screenshot):
    sign_in(page, marketer)

    cards = page.locator(".cards > article.card")
    expect(cards).to_have_count(4)
    rows = rows_of([card.bounding_box() for card in cards.all()])
    assert [len(row) for row in rows] == [2, 2], rows
    screenshot(page, full_page=False)


def test_the_model_line_says_when_it_was_trained_with_the_relative_time_as_tooltip(
    page, trained, marketer
):
    sign_in(page, marketer)

    moment = page.locator(".model-line time")
    expect(moment).to_have_text(re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d$"))
    expect(moment).to_have_attribute("title", re.compile(r"(ago|now)$"))
    assert moment.get_attribute("datetime").startswith(str(trained.finished_at.year))


@pytest.fixture
def trained_fixed(transactional_db):
    """600 demo customers segmented with a fixed K of 5: one K tried, five cards."""
    from clustering.models import TrainingRun

    call_command("generate_customers", count=600, seed=1, stdout=io.StringIO())
    call_command("train", sync=True, k=5, stdout=io.StringIO())
    return TrainingRun.objects.get(is_active=True)


def test_a_fixed_number_of_segments_leaves_no_blank_chart_box(
    page, trained_fixed, marketer, screenshot
):
    sign_in(page, marketer)
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-sizes'))")

    expect(page.locator("#chart-elbow, #chart-silhouette")).to_have_count(0)
    expect(page.locator("#fixed-k-note")).to_contain_text(
        "The number of segments was fixed at 5, so no other numbers were tried"
    )
    figures = page.locator(".chart-grid > *")
    expect(figures).to_have_count(2)
    drawn = page.evaluate(CHART_TYPES, ["chart-sizes", "chart-projection"])
    assert drawn == ["bar", "scatter"]
    boxes = [figure.bounding_box() for figure in figures.all()]
    assert len(rows_of(boxes)) == 1, "a chart sits alone beside an empty box"
    # Five cards: three, then two that fill their row.
    cards = rows_of([c.bounding_box() for c in page.locator(".cards > article.card").all()])
    assert [len(row) for row in cards] == [3, 2]
    grid = page.locator(".cards").bounding_box()
    last = cards[-1][-1]
    assert abs(last["x"] + last["width"] - (grid["x"] + grid["width"])) < 2
    assert page.js_errors == []
    screenshot(page)
