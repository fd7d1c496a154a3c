"""Fixtures shared by the whole suite.

Tests that need a real service (PostgreSQL, Redis, a Celery worker,
Chromium) call ``require_service``: locally a missing service skips the
test, in CI (REQUIRE_SERVICES=1, set by .ci/run) it fails it.
"""

from __future__ import annotations

import os

import pytest
from django.test import override_settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require_service(available: bool, what: str) -> None:
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available here")


def require_broker() -> None:
    """A worker's broker: Redis in CI (and wherever REDIS_URL is set), else the filesystem."""
    from django.conf import settings

    from tests.worker import redis_reachable

    if REQUIRE_SERVICES:
        require_service(bool(settings.REDIS_URL), "REDIS_URL (CI runs the worker on Redis)")
    if settings.REDIS_URL:
        require_service(redis_reachable(settings.REDIS_URL), "Redis")


@pytest.fixture(autouse=True)
def model_storage(settings, tmp_path):
    """Fitted models of a test go to a folder of its own."""
    settings.MODEL_STORAGE_DIR = tmp_path / "models"
    # In-process trainings of a test run inside its transaction, which a heartbeat
    # thread's own connection would wait on; worker processes keep their own setting.
    settings.CLUSTERING_HEARTBEAT_SECONDS = 3600
    return settings.MODEL_STORAGE_DIR


@pytest.fixture(autouse=True, scope="session")
def plain_http():
    """The test client and the live server speak plain HTTP. Without debug the site is
    HTTPS-only by default (DJANGO_HTTPS); tests of those settings turn them on again.

    Session-wide and first: the live server builds its middleware (which reads these
    settings once) when it starts, before any function-scoped fixture runs."""
    plain = override_settings(
        HTTPS=False,
        SECURE_SSL_REDIRECT=False,
        SECURE_PROXY_SSL_HEADER=None,
        SECURE_HSTS_SECONDS=0,
        SECURE_HSTS_INCLUDE_SUBDOMAINS=False,
        SECURE_HSTS_PRELOAD=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
    )
    plain.enable()
    yield
    plain.disable()


@pytest.fixture(autouse=True)
def private_cache(settings, request):
    """Each test has a cache of its own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": request.node.nodeid,
        }
    }


@pytest.fixture
def celery_worker(transactional_db, settings, tmp_path):
    """A real `celery worker` process on the test database; Redis in CI."""
    from tests.worker import start_worker, stop_worker

    require_broker()
    process = start_worker(tmp_path / "worker.log")
    yield process
    stop_worker(process)


@pytest.fixture(autouse=True)
def fresh_prediction_cache():
    """A model cached by an earlier test's process state must not answer this test."""
    from clustering.prediction import cache_clear
    from clustering.tokens import permission_cache_clear

    cache_clear(files=True)
    permission_cache_clear()
    yield
    cache_clear(files=True)
    permission_cache_clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests create and sign in many users; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def prediction_history_at_once(settings):
    """API predictions are written to the history at once, so a test that predicts can
    read its records; tests/operations/test_history_writer.py tests the held writes."""
    settings.PREDICTION_HISTORY_FLUSH_SECONDS = 0


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    """Uploads waiting for confirmation go to a folder of each test's own."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return settings.VAR_DIR


@pytest.fixture
def make_user(django_user_model):
    """make_user(name, *groups, perms=(), **fields): a user with tests.users.PASSWORD."""
    from tests.users import user_create

    return lambda username, *groups, **options: user_create(
        django_user_model, username, *groups, **options
    )


@pytest.fixture
def marketer(make_user):
    """In the "Marketing" group: views, predicts, edits and exports segments."""
    return make_user("mia", "Marketing")


@pytest.fixture
def manager(make_user):
    """In "Marketing managers": also starts retrains, activates runs, imports."""
    return make_user("max", "Marketing managers")
