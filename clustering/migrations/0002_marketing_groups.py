"""The two roles of the marketing team, as groups with their permissions.

Marketing: view segments and runs, predict, edit segment names and
strategies, export members. Marketing managers: all that, plus start a
retrain, activate (roll back to) a run and import customers.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MARKETING = [
    ("clustering", "view_segment"),
    ("clustering", "change_segment"),
    ("clustering", "export_segment"),
    ("clustering", "view_trainingrun"),
    ("clustering", "view_cluster"),
]
MANAGERS = MARKETING + [
    ("clustering", "start_training"),
    ("clustering", "activate_run"),
    ("customers", "view_customer"),
    ("customers", "add_customer"),
    ("customers", "change_customer"),
]


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in (("Marketing", MARKETING), ("Marketing managers", MANAGERS)):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in codes:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("clustering", "0001_initial"),
        ("customers", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
