from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from customers.csv_format import CsvFormatError
from customers.management.commands.import_customers import ProgressBar
from purchases.dates import FORMATS
from purchases.services import TransactionOptions, TransactionReport, transactions_import_file
from purchases.transaction_format import parse_columns_option


class Command(BaseCommand):
    help = (
        "Import purchases from an order log (any delimiter, spaces included; with a header "
        "row, or --columns naming the columns in order). Creates customers the file names "
        "unless --existing-only. All or nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--columns",
            metavar="customer_id,date,quantity,amount",
            help="the file has no header row: what each column holds, in order (- to skip one)",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar='"Column=field"',
            help="a header the importer does not recognise: customer_id, date, amount, "
            "quantity, order_id or product",
        )
        parser.add_argument(
            "--date-format",
            choices=[f.key for f in FORMATS],
            help="how the dates are written (detected when it is unambiguous)",
        )
        parser.add_argument("--skip-invalid", action="store_true")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument(
            "--existing-only", action="store_true", help="refuse purchases of unknown customers"
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        progress = ProgressBar(sys.stderr, not options["no_progress"] and sys.stderr.isatty())
        try:
            report = transactions_import_file(
                path=options["file"],
                options=TransactionOptions(
                    column_names=parse_columns_option(options["columns"])
                    if options["columns"]
                    else (),
                    explicit=self.explicit(options["map"]),
                    date_format=options["date_format"],
                    skip_invalid=options["skip_invalid"],
                    dry_run=options["dry_run"],
                    existing_only=options["existing_only"],
                    file_name=options["file"],
                ),
                progress=progress,
            )
        except FileNotFoundError:
            raise CommandError(f"{options['file']}: no such file") from None
        except (CsvFormatError, ValueError) as problem:
            raise CommandError(f"{options['file']}: {problem}") from None
        finally:
            progress.finish()
        self.print_report(report, options["file"])
        if report.error_count and not options["skip_invalid"]:
            raise CommandError(
                f"{report.error_count} problem(s) in {report.invalid_rows} row(s); nothing was "
                "imported. Fix the file, or pass --skip-invalid to import the valid rows."
            )
        if report.valid_rows == 0:
            raise CommandError("no row of the file is valid; nothing was imported.")

    @staticmethod
    def explicit(items: list[str]) -> dict[str, str]:
        mapping = {}
        for item in items:
            column, sep, field = item.partition("=")
            if not sep or not column.strip():
                raise CommandError(f'--map {item!r} must look like "Column=field"')
            mapping[column.strip()] = field.strip()
        return mapping

    def print_report(self, report: TransactionReport, name: str) -> None:
        write = self.stdout.write
        columns = ", ".join(f"{header!r} -> {field}" for field, header in report.columns.items())
        header = "" if report.header_row else " (no header row: columns by position)"
        write(f"{name}: {report.rows_read:,} purchase rows{header}; columns {columns}")
        write(f"Dates read as {report.date_format}.")
        for error in report.errors[:50]:
            self.stderr.write(f"  {error}")
        if report.error_count > 50:
            self.stderr.write(f"  ... and {report.error_count - 50} more")
        if report.written:
            skipped = (
                f"; {report.skipped_orders:,} rows of orders imported before were skipped"
                if report.skipped_orders
                else ""
            )
            write(
                self.style.SUCCESS(
                    f"Imported {report.purchases_added:,} purchases; "
                    f"{report.customers_created:,} new customers created{skipped}."
                )
            )
        elif report.dry_run:
            write(
                self.style.SUCCESS(
                    f"Dry run: {report.valid_rows:,} of {report.rows_read:,} rows are valid."
                )
            )
