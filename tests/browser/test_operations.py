"""Operations in Chromium: a manager's schedule, the drift warning and run now; a marketer
opens a customer's page from the member table."""

from __future__ import annotations

import re

import pytest
from django.db.models import F
from playwright.sync_api import expect

from clustering.models import ClusterAssignment
from customers.models import Customer
from operations.models import ScheduledRun
from operations.monitoring import drift_measure
from tests.browser.helpers import sign_in

pytestmark = pytest.mark.services


def test_a_manager_schedules_sees_drift_and_runs_the_schedule_now(
    page, trained, make_user, screenshot
):
    manager = make_user("max", "Marketing managers")
    sign_in(page, manager)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Operations")
    page.get_by_role("link", name="Add a schedule").click()
    page.get_by_label("Name").fill("Every month")
    page.get_by_label("Monthly (the 1st, 03:00)").check()
    page.get_by_label("Activate only if it is not worse than the active run").check()
    page.get_by_role("button", name="Save the schedule").click()

    row = page.locator("table.schedules tbody tr").filter(has_text="Every month")
    expect(row).to_contain_text("Activate only if it is not worse")
    expect(row.locator("time")).to_have_text(re.compile(r"\d"))  # the next run's date
    screenshot(page, "operations")

    # Half the customers now earn 40 thousand more; drift is measured (the worker would).
    every_other = list(Customer.objects.order_by("id").values_list("id", flat=True))[::2]
    Customer.objects.filter(id__in=every_other).update(annual_income=F("annual_income") + 40)
    drift_measure()
    page.get_by_role("link", name="Segments", exact=True).click()
    warning = page.locator("#drift-warning")
    expect(warning.get_by_role("heading")).to_have_text(
        f"Customers have shifted since run {trained.id}"
    )
    expect(warning).to_contain_text("Annual income (k) is higher than at training")
    expect(warning).to_contain_text("above 0.25 a large one")
    screenshot(page, "drift")

    warning.get_by_role("link", name="run a schedule now").click()
    row = page.locator("table.schedules tbody tr").filter(has_text="Every month")
    row.get_by_role("button", name="Run now").click()
    link = ScheduledRun.objects.get()
    expect(page).to_have_url(re.compile(rf"/runs/{link.run_id}/$"))
    expect(page.locator("#run-started")).to_contain_text("by the schedule “Every month”")
    assert page.js_errors == []


def test_a_marketer_opens_a_customers_page_from_the_member_table(
    page, trained, make_user, screenshot
):
    marketer = make_user("mia", "Marketing")
    assignment = (
        ClusterAssignment.objects.filter(run=trained)
        .select_related("customer", "cluster__segment")
        .first()
    )
    sign_in(page, marketer)
    page.goto(f"/segments/{assignment.cluster.segment_id}/?q={assignment.customer.customer_id}")
    page.get_by_role("link", name=assignment.customer.customer_id, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Customer {assignment.customer.customer_id}"
    )
    expect(page.locator(".current-segment")).to_contain_text(assignment.cluster.segment.name)
    expect(page.locator("table.segment-history tbody tr")).to_have_count(1)
    screenshot(page, "customer")
    assert page.js_errors == []
