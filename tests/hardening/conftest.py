"""Fixtures of the hardening suite: people in the site's groups, tokens, a trained model,
and a Celery broker pointed somewhere else for one test."""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Iterator

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.core.management import call_command

from clustering import prediction
from clustering.models import TrainingRun
from clustering.services import (
    TrainingParams,
    training_run_claim,
    training_run_execute,
    training_run_start,
)
from clustering.tokens import api_token_create

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Signing in hashes a password; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    """Uploads waiting for confirmation go to a folder of each test's own."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return settings.VAR_DIR


@pytest.fixture(autouse=True)
def fresh_model_files():
    """Forget fitted models loaded by earlier tests.

    The process keeps the loaded pipeline by (run id, sha256); training is deterministic and
    SQLite reuses ids after a rollback, so an earlier test's model would answer without its
    file being read (tests/conftest.py's fresh_prediction_cache clears only the active model).
    """
    prediction._pipelines.clear()
    yield
    prediction._pipelines.clear()


@pytest.fixture
def make_user(django_user_model) -> Callable:
    """make_user(name, *groups, **fields): a user in the given groups (created by migration)."""

    def make(username: str, *groups: str, **fields):
        if Group.objects.filter(name__in=groups).count() < len(groups):
            # A transactional test before this one flushed the groups the migration made.
            migration = importlib.import_module("clustering.migrations.0002_marketing_groups")
            migration.create_groups(django_apps, None)
        user = django_user_model.objects.create_user(username, password=PASSWORD, **fields)
        user.groups.set(Group.objects.filter(name__in=groups))
        assert user.groups.count() == len(groups), f"missing group among {groups}"
        return user

    return make


@pytest.fixture
def marketer(make_user):
    return make_user("mia", "Marketing")


@pytest.fixture
def manager(make_user):
    return make_user("max", "Marketing managers")


@pytest.fixture
def outsider(make_user):
    """Signed in, but in no group: no permission at all."""
    return make_user("olly")


@pytest.fixture
def token(marketer) -> str:
    return api_token_create(user=marketer, name="CRM")[1]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def train(**params) -> TrainingRun:
    """Train in this process, as `manage.py train --sync` does, and return the finished run."""
    run = training_run_start(params=TrainingParams(**params), enqueue=False)
    assert training_run_claim(run_id=run.id)
    run = training_run_execute(run_id=run.id)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return run


@pytest.fixture
def trained(db) -> TrainingRun:
    """400 demo customers and an active model of their four segments."""
    call_command("generate_customers", count=400, seed=7, stdout=io.StringIO())
    return train(k=4)


@pytest.fixture
def broker_at() -> Iterator[Callable[[str], None]]:
    """broker_at(url): send Celery tasks to ``url`` for the rest of the test.

    The app caches its connection and producer pools on first use, so changing
    ``app.conf.broker_url`` alone would keep publishing to the old broker.
    """
    from segmentation_site.celery import app

    saved = app.conf.broker_url, app.conf.broker_transport_options

    def reset_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    def point(url: str) -> None:
        app.conf.broker_url = url
        app.conf.broker_transport_options = {}
        reset_pools()

    yield point
    app.conf.broker_url, app.conf.broker_transport_options = saved
    reset_pools()
