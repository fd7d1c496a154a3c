"""Working with one segment: edit its strategy in place, export it, browse its customers."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from clustering.models import Segment
from tests.browser.conftest import PHONE
from tests.browser.helpers import (
    card_customer_count,
    mark_page,
    page_was_not_reloaded,
    segment_card,
    sign_in,
)
from tests.clustering.helpers import CAMPAIGN_HEADER

pytestmark = pytest.mark.services


def test_a_marketer_edits_a_strategy_in_place(page, trained, marketer, screenshot):
    sign_in(page, marketer)
    mark_page(page)
    card = segment_card(page, "Budget Shoppers")
    card_id = card.get_attribute("id")

    card.get_by_role("link", name="Edit name and strategy").click()
    editor = page.locator(f"#{card_id}.editing")
    expect(editor).to_be_visible()
    expect(editor.get_by_label("Name")).to_have_value("Budget Shoppers")
    editor.get_by_label("Name").fill("Deal Hunters")
    actions = editor.get_by_label("Actions")
    actions.press("Control+End")
    actions.press("Enter")
    actions.type("Send the weekend flyer on Thursday")
    screenshot(page, "editing")
    editor.get_by_role("button", name="Save").click()

    card = page.locator(f"#{card_id}")
    expect(card).not_to_have_class(re.compile("editing"))
    expect(card.get_by_role("heading", level=3)).to_have_text("Deal Hunters")
    expect(card.locator(".strategy li").last).to_have_text("Send the weekend flyer on Thursday")
    assert page_was_not_reloaded(page)

    page.reload()
    card = segment_card(page, "Deal Hunters")
    expect(card.locator(".strategy li").last).to_have_text("Send the weekend flyer on Thursday")
    expect(segment_card(page, "Budget Shoppers")).to_have_count(0)
    segment = Segment.objects.get(name="Deal Hunters")
    assert segment.actions[-1] == "Send the weekend flyer on Thursday"
    assert segment.updated_by == marketer
    assert page.js_errors == []
    screenshot(page, "saved")


def test_editing_a_card_by_keyboard_keeps_the_focus_where_the_user_works(page, trained, marketer):
    sign_in(page, marketer)
    card = segment_card(page, "Loyal Customers")
    card_id = card.get_attribute("id")

    card.get_by_role("link", name="Edit name and strategy").focus()
    page.keyboard.press("Enter")

    name = page.locator(f"#{card_id}.editing").get_by_label("Name")
    expect(name).to_be_focused()
    page.keyboard.press("End")
    page.keyboard.type(" (core)")
    page.keyboard.press("Enter")  # submits the form
    edit_link = page.locator(f"#{card_id}").get_by_role("link", name="Edit name and strategy")
    expect(edit_link).to_be_focused()
    expect(page.locator(f"#{card_id}").get_by_role("heading", level=3)).to_have_text(
        "Loyal Customers (core)"
    )


def test_a_marketer_exports_a_segment_as_csv(page, trained, marketer, tmp_path):
    sign_in(page, marketer)
    card = segment_card(page, "Loyal Customers")
    expected_rows = card_customer_count(card)

    with page.expect_download() as download_info:
        card.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert re.fullmatch(r"segment-loyal-customers-run-\d+\.csv", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)

    with path.open(newline="", encoding="utf-8") as file:
        header, *rows = list(csv.reader(file))
    assert header == CAMPAIGN_HEADER
    assert len(rows) == expected_rows
    assert {row[6] for row in rows} == {"Loyal Customers"}
    assert all(row[0].startswith("DEMO-") for row in rows)


def test_the_members_page_filters_as_you_type(page, trained, marketer, screenshot):
    sign_in(page, marketer)
    card = segment_card(page, "Potential Targets")
    size = card_customer_count(card)
    card.get_by_role("link", name="See the customers").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Potential Targets")
    rows = page.locator("#members-table tbody tr")
    expect(rows).to_have_count(min(size, 50))
    expect(page.locator("#members-table .pager")).to_contain_text("Page 1 of")
    screenshot(page, "all")
    mark_page(page)

    wanted = rows.nth(3).locator("td").first.inner_text()
    page.get_by_label("Customer ID or text contains").press_sequentially(wanted, delay=20)

    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text(wanted)
    expect(page.locator("#members-table .pager")).to_contain_text("(1 matching)")
    assert f"q={wanted}" in page.url
    assert page_was_not_reloaded(page)

    page.get_by_label("Customer ID or text contains").fill("NOBODY")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_text("No customers match.")
    assert page_was_not_reloaded(page)
    assert page.js_errors == []
    page.get_by_label("Customer ID or text contains").fill(wanted)
    expect(rows.first.locator("td").first).to_have_text(wanted)
    screenshot(page, "filtered")


def loyal_members_searched(page, marketer):
    """Sign in, open the Loyal Customers' members and search one of them; (rows, its ID)."""
    sign_in(page, marketer)
    segment_card(page, "Loyal Customers").get_by_role("link", name="See the customers").click()
    rows = page.locator("#members-table tbody tr")
    wanted = rows.nth(2).locator("td").first.inner_text()
    page.get_by_label("Customer ID or text contains").fill(wanted)
    expect(rows).to_have_count(1)
    page.wait_for_url(re.compile(f"q={wanted}"))
    return rows, wanted


def test_back_shows_the_filters_that_match_the_table(page, trained, marketer):
    rows, wanted = loyal_members_searched(page, marketer)
    page.get_by_label("Confidence").select_option("low")
    page.wait_for_url(re.compile("band=low"))

    page.go_back()

    page.wait_for_url(lambda url: f"q={wanted}" in url and "band=low" not in url)
    expect(page.get_by_label("Customer ID or text contains")).to_have_value(wanted)
    expect(page.get_by_label("Confidence")).to_have_value("")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text(wanted)


def test_back_from_another_page_shows_the_whole_members_page(page, trained, marketer):
    rows, wanted = loyal_members_searched(page, marketer)
    page.get_by_role("link", name="Segments", exact=True).click()
    page.get_by_role("heading", name="Customer segments").wait_for()

    page.go_back()

    expect(page.get_by_role("heading", level=1)).to_have_text("Loyal Customers")
    expect(page.get_by_label("Customer ID or text contains")).to_have_value(wanted)
    expect(rows).to_have_count(1)


def test_the_campaign_export_follows_the_members_filter(page, trained, marketer, tmp_path):
    sign_in(page, marketer)
    segment_card(page, "Budget Shoppers").get_by_role("link", name="See the customers").click()
    rows = page.locator("#members-table tbody tr")
    wanted = rows.first.locator("td").first.inner_text()

    page.get_by_label("Customer ID or text contains").fill(wanted)
    expect(rows).to_have_count(1)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export for a campaign (CSV)").click()
    path = tmp_path / "export.csv"
    download_info.value.save_as(path)

    with path.open(newline="", encoding="utf-8") as file:
        header, *exported = list(csv.reader(file))
    assert header == CAMPAIGN_HEADER
    assert [row[0] for row in exported] == [wanted], "the export ignored the filter on the page"


@pytest.fixture
def trained_on_three(transactional_db):
    """The demo customers with a channel of their own, segmented without purchases."""
    from clustering.models import TrainingRun
    from customers.models import Attribute, Customer

    call_command("generate_customers", count=600, seed=1, stdout=io.StringIO())
    Attribute.objects.create(key="channel", label="Channel", kind=Attribute.Kind.CATEGORICAL)
    customers = list(Customer.objects.order_by("id"))
    for i, customer in enumerate(customers):
        customer.attributes = {"channel": "web" if i % 4 else "store"}
    Customer.objects.bulk_update(customers, ["attributes"])
    call_command(
        "train", sync=True, features="age,annual_income,spending_score", stdout=io.StringIO()
    )
    return TrainingRun.objects.get(is_active=True)


def test_a_card_tells_the_features_of_the_segments_from_the_others(
    page, trained_on_three, marketer, screenshot
):
    sign_in(page, marketer)
    cards = page.locator(".cards article.card")
    expect(cards).to_have_count(trained_on_three.chosen_k)

    card = cards.first
    used = card.locator("table.compare tbody:not(.not-in-model) th[scope=row]")
    expect(used).to_have_text(["Age", "Annual income (k)", "Spending score"])
    others = card.locator("table.compare tbody.not-in-model")
    expect(others.locator("th[scope=rowgroup]")).to_have_text("Not used for segments")
    expect(others.locator("th[scope=row]")).to_have_text(["Purchases per year"])

    mix = card.locator(".mixes div", has=page.locator("dt", has_text="Channel"))
    expect(mix.locator("dd")).to_have_text(re.compile(r"^web \d+ % · store \d+ %$"))
    assert page.js_errors == []
    screenshot(page)


def column_values(page, header: str) -> list[str]:
    """The cells of one column of the members table, by its header."""
    headers = page.locator("#members-table thead th").all_inner_texts()
    position = headers.index(header) + 1
    return page.locator(f"#members-table tbody tr td:nth-child({position})").all_inner_texts()


def test_members_are_found_by_a_text_attribute_and_a_range_and_exported_alike(
    page, trained_on_three, marketer, tmp_path, screenshot
):
    sign_in(page, marketer)
    largest = page.locator(".cards article.card").first
    largest.get_by_role("link", name="See the customers").click()
    mark_page(page)

    page.get_by_label("Customer ID or text contains").fill("stor")
    expect(page.locator("#members-table .pager")).to_contain_text("matching")
    assert set(column_values(page, "Channel")) == {"store"}

    page.get_by_text("Filter by value").click()
    page.get_by_label("Age from").fill("30")
    page.get_by_label("Age to").fill("45")
    page.get_by_label("Purchases per year to").fill("25")
    page.get_by_label("Purchases per year to").press("Enter")
    page.wait_for_url(re.compile("max_purchase_frequency=25"))
    expect(page.locator("#members-table .pager")).to_contain_text("matching")
    ages = [int(age) for age in column_values(page, "Age")]
    assert ages and all(30 <= age <= 45 for age in ages)
    assert all(float(n) <= 25 for n in column_values(page, "Purchases per year"))
    assert set(column_values(page, "Channel")) == {"store"}
    assert page_was_not_reloaded(page)
    screenshot(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export for a campaign (CSV)").click()
    path = tmp_path / "export.csv"
    download_info.value.save_as(path)
    with path.open(newline="", encoding="utf-8") as file:
        exported = list(csv.DictReader(file))
    shown = page.locator("#members-table tbody tr td:first-child").all_inner_texts()
    assert len(shown) < 50  # one page: the export holds exactly the rows on it
    assert sorted(row["customer_id"] for row in exported) == sorted(shown)
    assert {row["channel"] for row in exported} == {"store"}
    assert page.js_errors == []


def test_on_a_phone_the_members_table_keeps_ids_whole_and_says_it_scrolls(
    new_page, trained, marketer, screenshot
):
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, marketer)
    segment_card(page, "Loyal Customers").get_by_role("link", name="See the customers").click()

    expect(page.locator(".scroll-hint")).to_be_visible()
    expect(page.locator(".scroll-hint")).to_contain_text("scrolls sideways")
    first_cells = page.locator("#members-table tbody tr td:first-child")
    lines = first_cells.first.evaluate(
        """td => {
            const range = document.createRange();
            range.selectNodeContents(td);
            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
        }"""
    )
    assert lines == 1, "a customer ID is broken over two lines"
    scroller = page.locator("#members-table .table-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
    screenshot(page, full_page=False)

    desktop = new_page()
    sign_in(desktop, marketer)
    segment_card(desktop, "Loyal Customers").get_by_role("link", name="See the customers").click()
    expect(desktop.locator(".scroll-hint")).to_be_hidden()


def test_a_name_another_segment_has_is_refused_in_plain_words(page, trained, marketer, screenshot):
    sign_in(page, marketer)
    card = segment_card(page, "Budget Shoppers")
    card_id = card.get_attribute("id")
    card.get_by_role("link", name="Edit name and strategy").click()
    editor = page.locator(f"#{card_id}.editing")

    editor.get_by_label("Name").fill("Loyal Customers")
    editor.get_by_role("button", name="Save").click()

    expect(editor.get_by_role("heading", level=3)).to_have_text("Edit “Budget Shoppers”")
    expect(editor).to_contain_text(
        "Another segment is already called “Loyal Customers”; choose another name."
    )
    expect(editor).not_to_contain_text("already exists")
    expect(editor.get_by_label("Name")).to_have_value("Loyal Customers")
    assert Segment.objects.filter(name="Budget Shoppers").exists()
    screenshot(page, full_page=False)
