"""Fixtures of the hardening suite: people in the site's groups, tokens, a trained model,
and a Celery broker pointed somewhere else for one test."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
from django.core.management import call_command

from clustering.models import TrainingRun
from clustering.services import (
    TrainingParams,
    training_run_claim,
    training_run_execute,
    training_run_start,
)
from clustering.tokens import api_token_create
from tests.users import PASSWORD as _PASSWORD

# PASSWORD lives in tests.users; re-exported for the hardening tests.
PASSWORD = _PASSWORD


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
