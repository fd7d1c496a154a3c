from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from customers.csv_format import CustomerRow
from customers.demo_data import DEMO_PREFIX, extra_attribute_keys, extra_attributes, generate
from customers.models import Attribute
from customers.services import CHUNK_ROWS, customers_upsert


class Command(BaseCommand):
    help = (
        "Create demo customers with four planted segments (High-Value, Budget, Potential "
        "Targets, Loyal) plus noise. The same --seed gives the same customers; IDs are "
        "DEMO-0000001 onwards, so running it again updates rather than duplicates."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=5_000)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--attributes",
            type=int,
            default=0,
            help="also give every customer this many extra attributes (amounts and regions)",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the database already has customers",
        )

    def handle(self, *args, count: int, seed: int, if_empty: bool, attributes: int, **options):
        from customers.models import Customer

        if count < 1 or count > 10_000_000:
            raise CommandError("--count must be between 1 and 10,000,000")
        if not 0 <= attributes <= 100:
            raise CommandError("--attributes must be between 0 and 100")
        if if_empty and Customer.objects.exists():
            self.stdout.write("Customers already present; no demo data generated.")
            return
        columns = generate(count, seed)
        extra = extra_attributes(attributes, count, seed)
        created = updated = 0
        with transaction.atomic():
            for key, kind in extra_attribute_keys(attributes):
                Attribute.objects.get_or_create(
                    key=key, defaults={"label": key.replace("_", " ").capitalize(), "kind": kind}
                )
            for start in range(0, count, CHUNK_ROWS):
                end = min(start + CHUNK_ROWS, count)
                rows = [self.row(columns, extra, i) for i in range(start, end)]
                new, changed, _same = customers_upsert(rows=rows)
                created, updated = created + new, updated + changed
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo customers (seed {seed}): {created} created, {updated} updated."
            )
        )

    @staticmethod
    def row(columns, extra, i: int) -> CustomerRow:
        frequency = int(columns["purchase_frequency"][i])
        return CustomerRow(
            customer_id=f"{DEMO_PREFIX}{i + 1:07d}",
            values={
                "age": int(columns["age"][i]),
                "annual_income": float(columns["annual_income"][i]),
                "spending_score": int(columns["spending_score"][i]),
                "purchase_frequency": frequency,
                "sex": str(columns["sex"][i]),
                **{key: _plain(values[i]) for key, values in extra.items()},
            },
        )


def _plain(value):
    """A numpy value as JSON takes it."""
    return value.item() if hasattr(value, "item") else value
