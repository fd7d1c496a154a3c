"""Marketing managers, who import customers, may also undo an import."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    undo = Permission.objects.get(content_type__app_label="customers", codename="undo_import")
    for group in Group.objects.filter(name="Marketing managers"):
        group.permissions.add(undo)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_catalogue_attributes_imports"),
        ("clustering", "0002_marketing_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
