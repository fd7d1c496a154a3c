"""Importing a headerless order log through the page, imported by a real worker."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from purchases.models import CustomerRfm, Purchase
from tests.browser.helpers import sign_in

pytestmark = pytest.mark.services


def order_log(customers: int) -> str:
    """customer, yyyymmdd, quantity, amount, space separated, no header; some returns."""
    lines = []
    for c in range(customers):
        for visit in range(1 + c % 4):
            amount = -4.5 if (c + visit) % 17 == 0 else 10 + (c * 7 + visit * 3) % 90 + 0.25
            lines.append(
                f"C{c:05d}  2024{1 + (c + visit * 3) % 12:02d}{1 + c % 28:02d}  1  {amount}"
            )
    return "\n".join(lines) + "\n"


def test_a_manager_imports_a_headerless_order_log_in_the_background(
    page, trained, manager, celery_worker, tmp_path, screenshot
):
    """On a site with an active model (600 demo customers), as after `make run`."""
    log = tmp_path / "orders.txt"
    log.write_text(order_log(2_000))
    rows = log.read_text().count("\n")
    sign_in(page, manager)
    page.get_by_role("link", name="Purchases").click()

    page.get_by_label("Order log").set_input_files(log)
    page.get_by_role("button", name="Check file").click()

    expect(
        page.get_by_role("heading", name="What does each column of orders.txt hold?")
    ).to_be_visible()
    # Guessed from the values: IDs, dates, whole numbers, amounts.
    expect(page.get_by_label("Column 2", exact=True).locator("option:checked")).to_have_text("Date")
    expect(page.get_by_label("Column 4", exact=True).locator("option:checked")).to_have_text(
        "Amount"
    )
    page.get_by_label("Column 3", exact=True).select_option(label="Quantity")
    screenshot(page, "columns")
    page.get_by_role("button", name="Check the file").click()

    expect(page.get_by_text(f"{rows:,} purchase rows, {rows:,} valid")).to_be_visible()
    expect(page.get_by_text("Dates read as yyyymmdd")).to_be_visible()
    page.get_by_role("button", name=f"Import {rows:,} purchases").click()

    expect(page.locator("#import-outcome")).to_have_text(
        f"Imported {rows:,} purchases; 2,000 new customers created.", timeout=60_000
    )
    expect(page.locator("#import-rfm")).to_contain_text("RFM values brought up to date for 2,000")
    screenshot(page, "done")
    assert Purchase.objects.count() == rows
    assert Purchase.objects.filter(amount__lt=0).exists()  # returns kept as returns
    assert CustomerRfm.objects.count() == 2_000
    page.get_by_role("link", name="See the RFM groups").click()
    expect(page.get_by_role("heading", name="RFM groups from the purchase history")).to_be_visible()
    assert page.js_errors == []
