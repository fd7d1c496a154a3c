"""Fixtures of the clustering tests: demo customers, a trained model, people in the site's
groups and a signed-in test client for each of them."""

from __future__ import annotations

import pytest
from django.test import Client
from threadpoolctl import threadpool_limits

from clustering.models import TrainingRun
from tests.clustering.helpers import make_customers, train


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """K-Means on a few hundred rows is fastest on one thread; OpenMP threads competing for
    a busy CI machine's cores made each training up to a hundred times slower."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def customers(db) -> int:
    """400 demo customers with the four planted personas."""
    return make_customers(400, seed=7)


@pytest.fixture
def trained(customers) -> TrainingRun:
    """The 400 demo customers and an active model trained on them (K chosen: 4)."""
    return train()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(make_user):
    """May look at segments, but not edit or export them."""
    return make_user("vic", perms=("clustering.view_segment",))


@pytest.fixture
def marketer_client(marketer) -> Client:
    return client_for(marketer)


@pytest.fixture
def manager_client(manager) -> Client:
    return client_for(manager)


@pytest.fixture
def viewer_client(viewer) -> Client:
    return client_for(viewer)
