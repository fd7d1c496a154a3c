"""Placing a new customer with the prediction form, with and without JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import mark_page, page_was_not_reloaded, sign_in

pytestmark = pytest.mark.services

A_BIG_SPENDER = {
    "Age": "42",
    "Annual income (k)": "118",
    "Spending score": "85",
    "Purchases per year": "30",
}
BANDS = re.compile(r"^(very confident|confident|moderate|low)$")


def fill_customer(page, values: dict[str, str]) -> None:
    form = page.locator("#predict-panel form")
    for label, value in values.items():
        form.get_by_label(label).fill(value)


def test_prediction_appears_in_place_without_a_reload(page, trained, marketer, screenshot):
    sign_in(page, marketer)
    mark_page(page)

    fill_customer(page, A_BIG_SPENDER)
    page.get_by_role("button", name="Find the segment").click()

    prediction = page.locator("#prediction")
    expect(prediction).to_be_visible()
    expect(prediction.locator(".segment-name")).to_have_text("High-Value Customers")
    expect(prediction.locator(".confidence")).to_have_text(re.compile(r"^\d{1,3} %$"))
    expect(prediction.locator(".badge")).to_have_text(BANDS)
    expect(prediction.get_by_role("heading", name="What to do")).to_be_visible()
    # The form keeps what was typed, ready for the next customer.
    expect(page.get_by_label("Age")).to_have_value("42")
    assert page_was_not_reloaded(page)
    prediction.scroll_into_view_if_needed()
    screenshot(page, "prediction")

    page.get_by_label("Age").fill("300")
    page.get_by_role("button", name="Find the segment").click()

    age_field = page.locator("#predict-panel .field").filter(has=page.locator("#id_age"))
    expect(age_field).to_contain_text("Age must be at most 110.")
    expect(page.locator("#id_age")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#prediction")).to_have_count(0)
    assert page_was_not_reloaded(page)
    assert page.js_errors == []
    screenshot(page, "invalid")


def test_prediction_works_without_javascript(new_page, trained, marketer, screenshot):
    page = new_page(java_script_enabled=False)
    sign_in(page, marketer)

    fill_customer(page, A_BIG_SPENDER)
    with page.expect_navigation():
        page.get_by_role("button", name="Find the segment").click()

    assert page.url.endswith("/predict/")
    prediction = page.locator("#prediction")
    expect(prediction.locator(".segment-name")).to_have_text("High-Value Customers")
    expect(prediction.locator(".confidence")).to_have_text(re.compile(r"^\d{1,3} %$"))
    expect(prediction.locator(".badge")).to_have_text(BANDS)
    screenshot(page)


def test_the_confidence_link_opens_its_explanation(page, trained, marketer):
    sign_in(page, marketer)
    help_panel = page.locator("details#metric-help")
    expect(help_panel).not_to_have_attribute("open", "")
    fill_customer(page, A_BIG_SPENDER)
    page.get_by_role("button", name="Find the segment").click()

    page.get_by_role("link", name="How confidence is computed").click()

    expect(help_panel).to_have_attribute("open", "")
    expect(help_panel.get_by_text("Unusual customer")).to_be_visible()


FAR_FROM_EVERYONE = {
    "Age": "45",
    "Annual income (k)": "9000",
    "Spending score": "99",
    "Purchases per year": "9000",
}


def test_a_customer_far_from_every_segment_is_told_it_fits_none_before_the_nearest(
    page, trained, marketer, screenshot
):
    sign_in(page, marketer)
    fill_customer(page, FAR_FROM_EVERYONE)
    page.get_by_role("button", name="Find the segment").click()

    prediction = page.locator("#prediction")
    headline = prediction.locator(".prediction-head")
    expect(headline).to_have_text("Fits no segment well (unusual)")
    first_words = prediction.inner_text().strip().splitlines()[0]
    assert first_words == "Fits no segment well (unusual)"
    nearest = prediction.locator(".nearest")
    expect(nearest).to_contain_text("Nearest segment")
    expect(prediction.get_by_role("heading", name="The nearest segment's strategy")).to_be_visible()
    # Nothing that reads as a confident fit: no confidence headline, badge or "What to do".
    expect(prediction.locator(".confidence, .badge, meter")).to_have_count(0)
    expect(prediction.get_by_role("heading", name="What to do")).to_have_count(0)
    assert headline.bounding_box()["y"] < nearest.bounding_box()["y"]
    assert page.js_errors == []
    prediction.scroll_into_view_if_needed()
    screenshot(page, full_page=False)


def test_a_decimal_income_is_placed_and_a_decimal_age_is_refused_in_words(page, trained, marketer):
    sign_in(page, marketer)
    fill_customer(page, {**A_BIG_SPENDER, "Annual income (k)": "118.5"})
    page.get_by_role("button", name="Find the segment").click()
    expect(page.locator("#prediction .segment-name")).to_have_text("High-Value Customers")

    page.get_by_label("Age").fill("38.5")
    page.get_by_role("button", name="Find the segment").click()

    age_field = page.locator("#predict-panel .field").filter(has=page.locator("#id_age"))
    expect(age_field).to_contain_text("Age must be a whole number.")
    expect(page.locator("#prediction")).to_have_count(0)
    income_field = page.locator("#predict-panel .field").filter(
        has=page.locator("#id_annual_income")
    )
    expect(income_field.locator(".errorlist")).to_have_count(0)
    expect(page.get_by_label("Annual income (k)")).to_have_value("118.5")
