from collections import Counter

from django.db import migrations, models

PALETTE_SIZE = 20  # len(clustering.palette.PALETTE) when this migration was written


def colours_for_existing_segments(apps, schema_editor):
    """The active run's segments get their cluster's index (the colour they had before);
    every other segment the first colour no segment holds yet, else the least held."""
    Segment = apps.get_model("clustering", "Segment")
    Cluster = apps.get_model("clustering", "Cluster")
    given = {}
    for segment_id, index in Cluster.objects.filter(run__is_active=True).values_list(
        "segment_id", "index"
    ):
        given[segment_id] = index % PALETTE_SIZE
    held = Counter(given.values())
    for segment in Segment.objects.order_by("id"):
        if segment.id not in given:
            given[segment.id] = min(range(PALETTE_SIZE), key=lambda i: (held[i], i))
            held[given[segment.id]] += 1
        segment.colour_index = given[segment.id]
        segment.save(update_fields=["colour_index"])


class Migration(migrations.Migration):
    dependencies = [
        ("clustering", "0008_run_activated_by_resent_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="segment",
            name="colour_index",
            field=models.PositiveSmallIntegerField(default=0, editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(colours_for_existing_segments, migrations.RunPython.noop),
    ]
