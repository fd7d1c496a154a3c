"""`manage.py drift [--json]`: measure the active run's drift now and print it per feature."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from operations import drift
from operations.monitoring import drift_measure
from operations.selectors import drift_words


class Command(BaseCommand):
    help = "Measure how far the customers have moved from the active run's training customers."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, **options):
        report = drift_measure()
        if report is None:
            raise CommandError("No model is active yet: train one first (manage.py train).")
        data = {
            "run_id": report.run_id,
            "level": report.level,
            "max_psi": report.max_psi,
            "changed_share": round(report.changed_share, 4),
            "changed": report.changed,
            "compared": report.compared,
            "new_customers": report.new_customers,
            "gone_customers": report.gone_customers,
            "customers_now": report.customers_now,
            "seconds": report.seconds,
            "thresholds": {
                "psi_moderate": drift.PSI_MODERATE,
                "psi_large": drift.PSI_LARGE,
                "changed_moderate": drift.CHANGED_MODERATE,
                "changed_large": drift.CHANGED_LARGE,
                "bins": f"deciles of the training customers ({drift.BINS} bins)",
            },
            "features": [{**item, "words": drift_words(item)} for item in report.features],
        }
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(
            f"Run {report.run_id}: drift {report.level}; nearest segment changed for "
            f"{report.changed_share:.1%} ({report.changed:,} of {report.compared:,}); "
            f"{report.new_customers:,} new customers ({report.seconds:.2f} s)"
        )
        for item in report.features:
            self.stdout.write(
                f"  {item['label']:<32} PSI {item['psi']:.3f} {item['level']:<9} "
                f"{drift_words(item)}"
            )
        self.stdout.write(
            f"Thresholds: PSI {drift.PSI_MODERATE} moderate, {drift.PSI_LARGE} large "
            f"(deciles of the training customers)."
        )
