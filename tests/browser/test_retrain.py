"""Retraining from the dashboard: progress from a real Celery worker, and who may do it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from clustering.models import TrainingRun
from tests.browser.helpers import mark_page, page_was_not_reloaded, segment_card, sign_in

pytestmark = pytest.mark.services

POST_START = """async () => {
    const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    const body = new URLSearchParams([
        ["mode", "fixed"], ["k", "3"], ["k_min", "2"], ["k_max", "10"],
        ["features", "age"], ["features", "annual_income"],
        ["missing", "exclude"], ["log_mode", "auto"],
    ]);
    const response = await fetch("/runs/start/", {
        method: "POST", body: body, headers: {"X-CSRFToken": token, "HX-Request": "true"},
    });
    return {status: response.status, text: await response.text()};
}"""


def test_a_manager_retrains_and_watches_it_finish(
    page, trained, manager, celery_worker, screenshot
):
    sign_in(page, manager)
    panel = page.locator("#retrain-panel")
    expect(panel.locator("#run-status")).to_contain_text(f"run {trained.id} succeeded")

    panel.get_by_label("Use a fixed number of segments").check()
    panel.get_by_role("spinbutton", name="Number of segments").fill("3")
    panel.get_by_role("button", name="Retrain now").click()

    status = page.locator("#run-status")
    expect(status).to_contain_text("Run ", timeout=5_000)
    new_run = TrainingRun.objects.exclude(id=trained.id).get()
    try:
        expect(status.locator("progress")).to_be_attached(timeout=5_000)
        screenshot(page, "progress")
    except PlaywrightTimeout:
        # A fast worker may finish before the first look: the run must be done then.
        new_run.refresh_from_db()
        assert new_run.is_finished, f"no progress bar while run {new_run.id} is {new_run.status}"

    # When the run finishes the page says so and offers a refresh; it never reloads itself.
    finished = re.compile(rf"run {new_run.id}\)? failed|A new model is active")
    expect(page.locator("#run-status")).to_contain_text(finished, timeout=90_000)
    new_run.refresh_from_db()
    assert new_run.status == TrainingRun.Status.SUCCEEDED, (
        new_run.error,
        celery_worker.log_path.read_text()[-2000:],
    )
    expect(page.locator("#run-status")).to_contain_text("A new model is active")
    page.get_by_role("link", name="Refresh to see the new model").click()
    model_line = page.locator(".model-line")
    expect(model_line).to_contain_text(f"run {new_run.id}")
    expect(model_line).to_contain_text("3 segments from 600 customers")
    expect(page.locator(".cards article.card")).to_have_count(3)
    expect(page.locator("#run-status")).to_contain_text(
        f"run {new_run.id} succeeded with 3 segments and is the active model"
    )
    assert new_run.created_by == manager
    assert page.js_errors == []
    screenshot(page, "finished")


def test_a_finished_retrain_keeps_an_open_edit_form_and_offers_a_refresh(
    page, trained, manager, celery_worker, screenshot
):
    sign_in(page, manager)
    mark_page(page)
    card = segment_card(page, "Budget Shoppers")
    card_id = card.get_attribute("id")
    card.get_by_role("link", name="Edit name and strategy").click()
    editor = page.locator(f"#{card_id}.editing")
    half_written = "Coupons on Thursdays, and then"
    editor.get_by_label("Description").fill(half_written)

    panel = page.locator("#retrain-panel")
    panel.get_by_label("Use a fixed number of segments").check()
    panel.get_by_role("spinbutton", name="Number of segments").fill("3")
    panel.get_by_role("button", name="Retrain now").click()

    status = page.locator("#run-status")
    expect(status).to_contain_text(re.compile(r"A new model is active|failed"), timeout=90_000)
    new_run = TrainingRun.objects.exclude(id=trained.id).get()
    assert new_run.status == TrainingRun.Status.SUCCEEDED, new_run.error
    expect(status).to_contain_text(f"run {new_run.id} finished with 3 segments")
    refresh = status.get_by_role("link", name="Refresh to see the new model")
    expect(refresh).to_be_visible()
    # Nothing moved under the person typing: same page, same form, same text.
    page.wait_for_timeout(2_500)  # a few more status polls would have reloaded it before
    assert page_was_not_reloaded(page)
    expect(editor.get_by_label("Description")).to_have_value(half_written)
    expect(page.locator(".model-line")).to_contain_text(f"run {trained.id}")
    screenshot(page, "notice")

    refresh.click()

    expect(page.locator(".model-line")).to_contain_text(f"run {new_run.id}")
    expect(page.locator(".cards article.card")).to_have_count(3)
    assert page.js_errors == []


def test_a_marketer_without_permission_cannot_retrain(page, trained, marketer):
    sign_in(page, marketer)

    expect(page.get_by_role("heading", name="Place a new customer")).to_be_visible()
    expect(page.get_by_role("button", name="Retrain now")).to_have_count(0)
    expect(page.locator("#retrain-panel")).to_have_count(0)

    answer = page.evaluate(POST_START)

    assert answer["status"] == 403
    assert "You do not have permission for this page." in answer["text"]
    assert "CSRF verification failed" not in answer["text"], "refused for the token instead"
    assert list(TrainingRun.objects.values_list("id", flat=True)) == [trained.id]


def test_the_retrain_form_s_number_inputs_line_up_with_or_without_a_message(
    page, trained, manager, screenshot
):
    sign_in(page, manager)
    panel = page.locator("#retrain-panel")
    inputs = [panel.locator(f"#id_{name}") for name in ("k", "k_min", "k_max")]

    def tops() -> set[int]:
        return {round(field.bounding_box()["y"]) for field in inputs}

    assert len(tops()) == 1, "a label on two lines pushed its input down"
    panel.get_by_label("Use a fixed number of segments").check()
    panel.get_by_role("button", name="Retrain now").click()
    expect(panel.locator(".errorlist")).to_contain_text("Give the number of segments")
    assert len(tops()) == 1, "the message moved its input"
    panel.scroll_into_view_if_needed()
    screenshot(page, full_page=False)
