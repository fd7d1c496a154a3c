"""A marketer brings the files shops really export, with only the page's column step."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clustering.models import TrainingRun
from customers.models import Customer
from tests.browser.helpers import sign_in
from tests.customers.real_files import MARKETING_DERIVATIONS, marketing_file, wholesale_file

pytestmark = pytest.mark.services


def upload(page, path) -> None:
    page.get_by_role("link", name="Import").click()
    page.get_by_label("CSV file").set_input_files(path)
    page.get_by_role("button", name="Check file").click()


def retrain_with_default_options(page) -> TrainingRun:
    page.get_by_role("link", name="Segments").first.click()
    page.locator("#retrain-panel").get_by_role("button", name="Retrain now").click()
    finished = re.compile(r"run \d+\)? failed|A new model is active")
    expect(page.locator("#run-status")).to_contain_text(finished, timeout=90_000)
    run = TrainingRun.objects.order_by("-id").first()
    if run.status == TrainingRun.Status.SUCCEEDED:  # the page waits to be refreshed
        page.get_by_role("link", name="Refresh to see the new model").click()
    return run


def test_the_marketing_export_imports_with_derived_columns_and_trains_by_default(
    page, manager, celery_worker, tmp_path, screenshot
):
    export = marketing_file(tmp_path / "marketing.tsv", rows=600)
    sign_in(page, manager)
    upload(page, export)

    # Tab-separated, no known names but ID and Income: the page asks what each column is.
    expect(page.get_by_role("heading", name=re.compile("What does each column"))).to_be_visible()
    expect(page.get_by_label("MntWines", exact=True).locator("option:checked")).to_have_text(
        "New attribute: a number"
    )
    page.get_by_label("Education", exact=True).select_option(label="New attribute: a category")
    page.get_by_label("Marital_Status", exact=True).select_option(label="New attribute: a category")
    # Year_Birth and Income only feed the derived age and income.
    page.get_by_label("Year_Birth", exact=True).select_option(label="Not imported")
    page.get_by_label("Income", exact=True).select_option(label="Not imported")
    for row, derivation in enumerate(MARKETING_DERIVATIONS):
        page.get_by_label(f"Derived column {row + 1}").fill(derivation)
    screenshot(page, "columns")
    page.get_by_role("button", name="Check the file").click()

    expect(page.get_by_text("600 data rows, 600 valid (tab-separated).")).to_be_visible()
    page.get_by_role("button", name="Import 600 customers").click()
    expect(page.get_by_text("Imported 600 new and 0 changed customers")).to_be_visible()
    blank_income = Customer.objects.filter(annual_income__isnull=True).count()
    assert blank_income > 0  # blanks stay missing: their rows were imported

    run = retrain_with_default_options(page)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert {"age", "annual_income", "total_spend", "total_purchases"} <= set(run.features)
    # Nobody is silently left out: the dashboard says who is in no segment and why.
    coverage = page.locator(".coverage")
    expect(coverage).to_contain_text(f"{blank_income} customer")
    expect(coverage).to_contain_text("Annual income")
    screenshot(page, "dashboard")
    assert page.js_errors == []


def test_a_business_file_without_ids_gets_names_from_its_own_columns(
    page, manager, celery_worker, tmp_path
):
    sign_in(page, manager)
    upload(page, wholesale_file(tmp_path / "wholesale.csv"))
    page.get_by_label("Channel", exact=True).select_option(label="New attribute: a category")
    page.get_by_label("Region", exact=True).select_option(label="New attribute: a category")
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_text(re.compile("Customer IDs from the row number"))).to_be_visible()
    page.get_by_role("button", name="Import 440 customers").click()

    run = retrain_with_default_options(page)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    headings = page.locator("article.card h3").all_inner_texts()
    consumer = {"High-Value Customers", "Budget Shoppers", "Potential Targets", "Loyal Customers"}
    assert not consumer & set(headings)
    assert any("grocery" in name.lower() or "fresh" in name.lower() for name in headings)
    # The channel mix is on the cards.
    expect(page.locator("article.card").first).to_contain_text("Channel")
