"""Both marketing roles run campaigns: create them (freezing the audience), export them and
import their outcomes (the people who send a campaign are the ones who get its results)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = [
    ("campaigns", "view_campaign"),
    ("campaigns", "add_campaign"),
    ("campaigns", "import_outcomes"),
]
GROUPS = ("Marketing", "Marketing managers")


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name in GROUPS:
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in PERMISSIONS:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("clustering", "0002_marketing_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
