"""Version 1 of every strategy that exists before versions are kept."""

from django.db import migrations


def record_existing(apps, schema_editor):
    Segment = apps.get_model("clustering", "Segment")
    StrategyVersion = apps.get_model("audit", "StrategyVersion")
    StrategyVersion.objects.bulk_create(
        StrategyVersion(
            segment_id=segment.id,
            number=1,
            name=segment.name,
            description=segment.description,
            actions=list(segment.actions or []),
            author_id=segment.updated_by_id,
            note="as it was when versions began to be kept",
        )
        for segment in Segment.objects.all()
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(record_existing, migrations.RunPython.noop)]
