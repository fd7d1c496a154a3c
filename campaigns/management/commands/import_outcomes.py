"""import_outcomes CAMPAIGN FILE: a campaign's results (customer ID, converted, revenue)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.outcomes import outcomes_import_stream
from customers.csv_format import CsvFormatError


class Command(BaseCommand):
    help = (
        "Import a campaign's outcomes: a CSV with customer_id, converted (yes/no) and "
        "optionally revenue. Other columns are ignored and reported; customers outside the "
        "campaign are reported and not counted. All or nothing; replaces earlier outcomes."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(id=options["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"There is no campaign {options['campaign_id']}.")
        try:
            with open(options["file"], "rb") as stream:
                report = outcomes_import_stream(
                    campaign=campaign,
                    stream=stream,
                    source=options["file"],
                    dry_run=options["dry_run"],
                )
        except FileNotFoundError:
            raise CommandError(f"{options['file']}: no such file") from None
        except CsvFormatError as problem:
            raise CommandError(f"{options['file']}: {problem}") from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            self._print(report)
        if report.error_count:
            raise CommandError(
                f"{report.error_count} problem(s); nothing was imported. Fix the file and "
                "import it again."
            )

    def _print(self, report) -> None:
        self.stdout.write(f"{report.rows_read:,} rows read.")
        if report.ignored_columns:
            self.stdout.write(f"Ignored columns: {', '.join(report.ignored_columns)}.")
        for error in report.errors[:200]:
            self.stdout.write(f"  {error}")
        if report.outsider_count:
            shown = ", ".join(f"row {r}: {c}" for r, c in report.outsiders[:20])
            self.stdout.write(
                f"{report.outsider_count:,} row(s) for customers outside the campaign, not "
                f"counted ({shown}{', ...' if report.outsider_count > 20 else ''})."
            )
        if report.written:
            self.stdout.write(
                f"Counted {report.counted:,} outcomes; {report.members_without_row:,} campaign "
                "customers without a row count as not converted."
            )
