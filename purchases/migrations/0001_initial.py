import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("customers", "0002_catalogue_attributes_imports"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PurchaseFile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("file_name", models.CharField(max_length=255)),
                ("sha256", models.CharField(max_length=64, unique=True)),
                ("rows", models.PositiveIntegerField(default=0)),
                ("customers_created", models.PositiveIntegerField(default=0)),
                ("skipped_orders", models.PositiveIntegerField(default=0)),
                ("date_format", models.CharField(blank=True, max_length=40)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-created_at", "-id"]},
        ),
        migrations.CreateModel(
            name="Purchase",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("date", models.DateField()),
                ("time", models.TimeField(blank=True, null=True)),
                ("amount", models.FloatField(help_text="Negative for a return.")),
                ("quantity", models.IntegerField(blank=True, null=True)),
                ("order_id", models.CharField(blank=True, db_index=True, max_length=64)),
                ("product", models.CharField(blank=True, max_length=200)),
                (
                    "customer",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="customers.customer",
                    ),
                ),
                (
                    "source",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="purchases",
                        to="purchases.purchasefile",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["customer", "date"], name="purchase_customer_date_idx")
                ]
            },
        ),
        migrations.CreateModel(
            name="CustomerRfm",
            fields=[
                (
                    "customer",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="rfm",
                        serialize=False,
                        to="customers.customer",
                    ),
                ),
                ("as_of", models.DateField()),
                ("recency_days", models.IntegerField()),
                ("frequency", models.IntegerField(help_text="Purchase days, or orders when order IDs exist.")),
                ("monetary_total", models.FloatField()),
                ("monetary_mean", models.FloatField()),
                ("tenure_days", models.IntegerField()),
                ("interpurchase_days", models.FloatField(blank=True, null=True)),
                ("r_score", models.PositiveSmallIntegerField()),
                ("f_score", models.PositiveSmallIntegerField()),
                ("m_score", models.PositiveSmallIntegerField()),
                ("group", models.CharField(max_length=40)),
            ],
        ),
    ]
