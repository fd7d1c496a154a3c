from __future__ import annotations

import io

from django.core.management.base import BaseCommand

from customers.demo_data import DEMO_PREFIX
from customers.models import Customer
from purchases.demo_data import purchase_lines
from purchases.models import Purchase
from purchases.services import TransactionOptions, transactions_import


class Command(BaseCommand):
    help = (
        "Give the customers demo purchase histories (regulars, lapsed big spenders, one-time "
        "buyers, new customers), imported like an order log. Same seed, same history."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when there are purchases"
        )
        parser.add_argument(
            "--if-demo",
            action="store_true",
            help="only for a demo database: no purchases yet and only demo customers "
            "(what `make run` does; a shop's own customers never get invented purchases)",
        )

    def handle(self, *args, seed: int, if_empty: bool, if_demo: bool, **options):
        if (if_empty or if_demo) and Purchase.objects.exists():
            self.stdout.write("Purchases already present; no demo history generated.")
            return
        if if_demo and Customer.objects.exclude(customer_id__startswith=DEMO_PREFIX).exists():
            self.stdout.write("Not only demo customers; no demo history generated.")
            return
        ids = list(Customer.objects.order_by("id").values_list("customer_id", flat=True))
        if not ids:
            self.stdout.write("No customers yet: run generate_customers first.")
            return
        text = "customer_id,date,amount\n" + "\n".join(purchase_lines(ids, seed)) + "\n"
        report = transactions_import(
            stream=io.BytesIO(text.encode()),
            options=TransactionOptions(file_name=f"demo purchases (seed {seed})"),
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo purchases (seed {seed}): {report.purchases_added:,} for {len(ids):,} "
                "customers; RFM values computed."
            )
        )
