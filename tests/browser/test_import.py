"""Importing a CSV file through the upload page, as a marketing manager would."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from customers.models import Attribute, Customer
from tests.browser.helpers import sign_in

pytestmark = pytest.mark.services

CRM_EXPORT = "Client ref,Gender,Years,Income,Score\nC-1,Female,34,61.5,72\nC-2,Male,51,88,15\n"


def test_a_manager_imports_a_file_whose_columns_have_other_names(
    page, manager, tmp_path, screenshot
):
    crm = tmp_path / "crm.csv"
    crm.write_text(CRM_EXPORT)
    sign_in(page, manager)
    page.get_by_role("link", name="Import").click()

    page.get_by_label("CSV file").set_input_files(crm)
    page.get_by_role("button", name="Check file").click()

    # Two columns are not recognised by name, so the page asks what each column holds,
    # with its guesses for the others already chosen.
    expect(
        page.get_by_role("heading", name="What does each column of crm.csv hold?")
    ).to_be_visible()
    expect(page.get_by_label("Score", exact=True).locator("option:checked")).to_have_text(
        "Spending score"
    )
    expect(page.get_by_label("Gender", exact=True).locator("option:checked")).to_have_text("Sex")
    expect(page.get_by_label("Client ref", exact=True).locator("option:checked")).not_to_have_text(
        "Customer ID"
    )
    page.get_by_label("Client ref", exact=True).select_option(label="Customer ID")
    page.get_by_label("Years", exact=True).select_option(label="Age")
    screenshot(page, "columns")
    page.get_by_role("button", name="Check the file").click()

    expect(page.get_by_text("2 data rows, 2 valid (comma-separated).")).to_be_visible()
    expect(page.get_by_text("Customer IDs from the column 'Client ref'.")).to_be_visible()
    page.get_by_role("button", name="Import 2 customers").click()

    expect(page.get_by_text("Imported 2 new and 0 changed customers")).to_be_visible()
    first = Customer.objects.get(customer_id="C-1")
    assert (first.age, first.sex, first.annual_income, first.spending_score) == (
        34,
        "female",
        61.5,
        72,
    )
    assert first.purchase_frequency is None  # not in the file: unknown, never zero
    assert first.attributes == {}  # every column went to a known field
    assert not Attribute.objects.exists()
    assert page.js_errors == []


def test_the_upload_form_puts_the_box_by_its_words_and_styles_the_file_picker(
    page, manager, screenshot
):
    sign_in(page, manager)
    page.get_by_role("link", name="Import").click()

    box = page.get_by_label("Import the valid rows even if some rows are invalid")
    words = page.locator("label.check")
    box_rect, words_rect = box.bounding_box(), words.bounding_box()
    assert words_rect["x"] <= box_rect["x"] < words_rect["x"] + 10, "the box left its label"
    middle = box_rect["y"] + box_rect["height"] / 2
    assert words_rect["y"] <= middle <= words_rect["y"] + words_rect["height"]
    page.get_by_text("Import the valid rows even if some rows are invalid").click()
    expect(box).to_be_checked()

    picker = page.get_by_label("CSV file")
    button_colour = picker.evaluate(
        "el => getComputedStyle(el, '::file-selector-button').backgroundColor"
    )
    accent = page.get_by_role("button", name="Check file").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert button_colour == accent, "the file picker's button is the browser's grey one"
    assert picker.evaluate("el => getComputedStyle(el).borderStyle") == "dashed"
    screenshot(page)


def test_the_column_step_keeps_its_choices_narrow_and_names_a_duplicate(
    page, manager, tmp_path, screenshot
):
    crm = tmp_path / "crm.csv"
    crm.write_text(CRM_EXPORT)
    sign_in(page, manager)
    page.get_by_role("link", name="Import").click()
    page.get_by_label("CSV file").set_input_files(crm)
    page.get_by_role("button", name="Check file").click()

    selects = page.locator("table.column-choices select")
    expect(selects).to_have_count(5)
    widths = [select.bounding_box()["width"] for select in selects.all()]
    assert max(widths) < 320, widths
    expect(page.locator("table.column-choices td.muted").first).to_have_text("e.g. C-1, C-2")

    page.get_by_label("Years", exact=True).select_option(label="Age")
    page.get_by_label("Score", exact=True).select_option(label="Age")
    page.get_by_role("button", name="Check the file").click()

    score_row = page.locator("table.column-choices tr").filter(has=page.get_by_label("Score"))
    expect(score_row.locator(".error")).to_have_text(
        "Columns “Score” and “Years” both hold Age; choose one."
    )
    screenshot(page)
