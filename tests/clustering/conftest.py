"""Fixtures of the clustering tests: demo customers, a trained model, people in the site's
groups and a signed-in test client for each of them."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
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


@pytest.fixture
def make_user(django_user_model) -> Callable:
    """make_user(name, *groups, perms=()): a user in the site's groups, with extra permissions
    given as "app_label.codename"."""

    def make(username: str, *groups: str, perms: tuple[str, ...] = ()):
        if Group.objects.filter(name__in=groups).count() < len(groups):
            # A transactional test before this one flushed the groups the migration made.
            migration = importlib.import_module("clustering.migrations.0002_marketing_groups")
            migration.create_groups(django_apps, None)
        user = django_user_model.objects.create_user(username)
        user.groups.set(Group.objects.filter(name__in=groups))
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return user

    return make


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def marketer(make_user):
    """In the "Marketing" group: views, predicts, edits and exports segments."""
    return make_user("mia", "Marketing")


@pytest.fixture
def manager(make_user):
    """In "Marketing managers": also starts retrains and activates runs."""
    return make_user("max", "Marketing managers")


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
