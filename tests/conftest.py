"""Fixtures shared by the whole suite.

Tests that need a real service (PostgreSQL, Redis, a Celery worker,
Chromium) call ``require_service``: locally a missing service skips the
test, in CI (REQUIRE_SERVICES=1, set by .ci/run) it fails it.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require_service(available: bool, what: str) -> None:
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available here")


@pytest.fixture(autouse=True)
def model_storage(settings, tmp_path):
    """Fitted models of a test go to a folder of its own."""
    settings.MODEL_STORAGE_DIR = tmp_path / "models"
    return settings.MODEL_STORAGE_DIR
