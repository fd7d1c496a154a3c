"""Marketing managers run operations: the page, schedules, pruning, everyone's predictions.
Marketers see their own predictions without a permission of this app."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MANAGERS = [
    ("operations", "manage_operations"),
    ("operations", "view_all_predictions"),
    ("operations", "view_schedule"),
    ("operations", "add_schedule"),
    ("operations", "change_schedule"),
    ("operations", "delete_schedule"),
]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Marketing managers")
    for app_label, codename in MANAGERS:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0001_initial"),
        ("clustering", "0002_marketing_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
