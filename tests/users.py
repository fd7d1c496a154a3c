"""People in the site's groups, for tests."""

from __future__ import annotations

import importlib

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission

PASSWORD = "correct horse battery staple"


def ensure_groups(names) -> None:
    """Recreate the groups the migration made when a transactional test flushed them."""
    if Group.objects.filter(name__in=names).count() < len(set(names)):
        migration = importlib.import_module("clustering.migrations.0002_marketing_groups")
        migration.create_groups(django_apps, None)
        campaigns = importlib.import_module("campaigns.migrations.0002_marketing_permissions")
        campaigns.grant(django_apps, None)
        operations = importlib.import_module("operations.migrations.0002_manager_permissions")
        operations.grant(django_apps, None)


def user_create(user_model, username: str, *groups: str, perms=(), **fields):
    """A user with PASSWORD in the given groups, plus permissions "app_label.codename"."""
    ensure_groups(groups)
    user = user_model.objects.create_user(username, password=PASSWORD, **fields)
    user.groups.set(Group.objects.filter(name__in=groups))
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user
