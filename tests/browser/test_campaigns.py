"""A marketer runs a campaign with a control group: create it on two segments, export the
customers to contact, import the outcomes and read the lift."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from campaigns.models import Campaign
from clustering.models import Segment, TrainingRun
from tests.browser.helpers import mark_page, page_was_not_reloaded, segment_card, sign_in
from tests.campaigns.helpers import swap_customers

pytestmark = pytest.mark.services


def outcomes_file(campaign: Campaign, path, planted: str) -> None:
    """The campaign tool's results: in ``planted`` six in ten contacted customers bought and
    nobody in control; elsewhere one in ten in both groups (no effect)."""
    labels = {s["key"]: s["label"] for s in campaign.strata}
    lines = ["Customer ID,Converted,Revenue,Coupon code"]
    counters: dict[tuple[str, str], int] = {}
    members = campaign.members.order_by("customer__customer_id").values_list(
        "customer__customer_id", "stratum", "group"
    )
    for customer_id, stratum, group in members:
        n = counters[stratum, group] = counters.get((stratum, group), 0) + 1
        effect = labels[stratum] == planted
        bought = (group == "treatment" and n % 10 < 6) if effect else n % 10 == 0
        lines.append(f"{customer_id},{'yes' if bought else 'no'},{80 if bought else 0},SPRING")
    lines.append("NOT-IN-CAMPAIGN,yes,500,SPRING")
    path.write_text("\n".join(lines) + "\n")


def test_a_marketer_measures_a_campaign_on_two_segments(
    page, trained, marketer, tmp_path, screenshot
):
    sign_in(page, marketer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()

    page.get_by_label("Name").fill("Premium launch")
    page.get_by_label(re.compile(r"High-Value Customers \(")).check()
    page.get_by_label(re.compile(r"Budget Shoppers \(")).check()
    expect(page.get_by_label("Control group (%)")).to_have_value("10")
    page.get_by_label("Cost per contact").fill("0.50")
    page.get_by_role("button", name="Create and freeze the audience").click()

    expect(page.get_by_role("heading", name="Premium launch")).to_be_visible()
    expect(page.locator("#frozen-by")).to_contain_text("by mia")
    campaign = Campaign.objects.get(name="Premium launch")
    assert campaign.control_size > 0

    with page.expect_download() as download:
        page.locator("#export-treatment").click()
    exported = tmp_path / "treatment.csv"
    download.value.save_as(exported)
    rows = list(csv.DictReader(exported.open()))
    assert len(rows) == campaign.treatment_size
    assert {r["segment"] for r in rows} == {"High-Value Customers", "Budget Shoppers"}

    results = tmp_path / "results.csv"
    outcomes_file(campaign, results, planted="High-Value Customers")
    page.get_by_label(re.compile("Outcomes CSV")).set_input_files(str(results))
    page.get_by_role("button", name="Import outcomes").click()

    expect(page.locator("#ignored-columns")).to_contain_text("Coupon code")
    expect(page.locator("#outsiders")).to_contain_text("NOT-IN-CAMPAIGN")
    planted = page.locator('#lift tr[data-segment="High-Value Customers"]')
    null = page.locator('#lift tr[data-segment="Budget Shoppers"]')
    expect(planted).to_contain_text("significant, the interval does not include zero")
    expect(null).to_contain_text("not significant, the interval includes zero")
    expect(null).to_contain_text("would take about")
    expect(page.locator("#methods")).to_contain_text("Newcomb")
    expect(page.locator("#outcome-imports")).to_contain_text("mia")
    roi = planted.locator("td").last.inner_text()
    assert re.fullmatch(r"\d+ % \(95 % CI \d+ % to \d+ %\)", roi), roi
    screenshot(page, "lift")
    assert page.js_errors == []


def test_the_planning_calculator_works_out_the_playbook_example_as_you_type(
    page, trained, marketer, screenshot
):
    sign_in(page, marketer)
    page.goto("/campaigns/plan/")
    mark_page(page)

    expect(page.locator("#plan-verdict")).to_contain_text("83 % less")
    expect(page.locator("#plan-table")).to_contain_text("51,000")
    cluster = trained.clusters.get(segment__name="Loyal Customers")
    loyal = cluster.size
    page.get_by_label("Segment", exact=True).select_option(str(cluster.segment_id))

    expect(page.get_by_label("Segment: customers")).to_have_value(str(loyal))
    expect(page.locator("#plan-table thead")).to_contain_text("Loyal Customers")
    page.get_by_label("Segment: expected conversion (%)").fill("20")
    expect(page.locator("#plan-table")).to_contain_text(f"{round(loyal * 0.2)}")
    assert page_was_not_reloaded(page)
    screenshot(page, "calculator")
    assert page.js_errors == []


def test_a_segments_size_over_time_spans_several_retrains(page, trained, marketer, screenshot):
    swap_customers(trained)
    call_command("train", sync=True, stdout=io.StringIO())
    swap_customers(TrainingRun.objects.get(is_active=True), count=10)
    call_command("train", sync=True, stdout=io.StringIO())
    segment = Segment.objects.get(name="High-Value Customers")
    sign_in(page, marketer)

    card = segment_card(page, "High-Value Customers")
    card.get_by_role("link", name="History").click()

    size_points = page.locator("#size-chart circle")
    expect(size_points).to_have_count(segment.clusters.count())
    assert segment.clusters.count() == 3
    expect(page.locator("#changes")).to_contain_text("joined")
    expect(page.locator("#strategy-versions li").first).to_contain_text("current")
    screenshot(page, "history")
