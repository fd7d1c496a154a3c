"""What the browser tests do the way a person would: sign in, find a card, notice a reload."""

from __future__ import annotations

import re

from tests.users import PASSWORD

SEGMENT_NAMES = {
    "High-Value Customers",
    "Budget Shoppers",
    "Potential Targets",
    "Loyal Customers",
}


def sign_in(page, user, password: str = PASSWORD) -> None:
    """Open the site, get sent to the login form, sign in and land on the dashboard."""
    page.goto("/")
    assert "/accounts/login/" in page.url, "the dashboard did not ask to sign in"
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/accounts/login/" not in page.url, "signing in failed"
    page.get_by_role("heading", name="Customer segments").wait_for()


def segment_card(page, name: str):
    """The dashboard card whose heading is exactly ``name``."""
    heading = page.get_by_role("heading", name=name, exact=True)
    return page.locator("article.card").filter(has=heading)


def card_customer_count(card) -> int:
    """The number in the card's "183 customers · average confidence ..." line."""
    text = card.locator(".size").inner_text()
    match = re.match(r"([\d,]+) customers", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def mark_page(page) -> None:
    """Leave a mark in the window: a full page load wipes it, an htmx swap keeps it."""
    page.evaluate("window.__marker = 1")


def page_was_not_reloaded(page) -> bool:
    return page.evaluate("window.__marker") == 1
