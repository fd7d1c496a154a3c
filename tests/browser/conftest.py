"""Fixtures of the browser tests: Debian's Chromium driven by Playwright.

The site runs in pytest-django's ``live_server`` (a thread of this process on
the test database); Playwright's sync API runs an event loop in this thread,
so Django's async-safety check is switched off before anything imports it.
Screenshots go to ``test-artifacts/screenshots/`` at the repository root.
"""

from __future__ import annotations

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import contextlib  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from django.core.management import call_command  # noqa: E402

from tests.conftest import require_service  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# The groups come from a data migration; transactional tests flush them away,
# so each test puts them back from the migration's own permission lists.


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def artifact_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    executable = shutil.which("chromium")
    require_service(executable is not None, "Chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev requirements have it
        require_service(False, "Playwright")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def screenshot(request) -> Callable:
    """screenshot(page, suffix="") saves a (full-page) PNG named after the test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, suffix: str = "", *, full_page: bool = True) -> Path:
        name = artifact_name(request.node.name + (f"-{suffix}" if suffix else ""))
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return save


@pytest.fixture
def new_page(browser, live_server, request) -> Iterator[Callable]:
    """new_page(**context_options) -> a page in a fresh context on the live server.

    JavaScript errors of the page are collected in ``page.js_errors``. If the
    test fails, every page it opened is saved as a screenshot.
    """
    contexts, pages = [], []
    for stale in SCREENSHOTS.glob(f"{artifact_name(request.node.name)}-FAILED-*.png"):
        stale.unlink()

    def open_page(**options):
        options.setdefault("viewport", DESKTOP)
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda error: page.js_errors.append(str(error)))
        pages.append(page)
        return page

    yield open_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for i, page in enumerate(pages):
            name = artifact_name(f"{request.node.name}-FAILED-{i}")
            # A failed screenshot (a closed page, say) must not hide the failure itself.
            with contextlib.suppress(Exception):
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def make_user(transactional_db, make_user):
    """The suite's make_user, on the committed database the live server reads."""
    return make_user


@pytest.fixture
def trained(transactional_db):
    """600 demo customers and an active run with the four named segments."""
    from clustering.models import TrainingRun

    call_command("generate_customers", count=600, seed=1, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())
    return TrainingRun.objects.get(is_active=True)
