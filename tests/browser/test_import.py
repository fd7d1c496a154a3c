"""Importing a CSV file through the upload page, as a marketing manager would."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from customers.models import Customer
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

    expect(page.get_by_text("Not found by name in crm.csv: Customer ID, Age.")).to_be_visible()
    chosen = page.get_by_label("Spending score").locator("option:checked")
    expect(chosen).to_have_text("Score")
    page.get_by_label("Customer ID").select_option("Client ref")
    page.get_by_label("Age").select_option("Years")
    screenshot(page, "columns")
    page.get_by_role("button", name="Check the file again").click()

    expect(page.get_by_text("2 data rows, 2 valid.")).to_be_visible()
    page.get_by_role("button", name="Import 2 customers").click()

    expect(page.get_by_text("Imported 2 new and 0 changed customers")).to_be_visible()
    assert Customer.objects.get(customer_id="C-1").age == 34
    assert page.js_errors == []
