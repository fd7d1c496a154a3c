from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from customers.csv_format import CsvFormatError, parse_mapping_option
from customers.services import ImportReport, customers_import_file


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, stream, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.1 or not total:
            return
        self.last = now
        share = min(done / total, 1.0)
        bar = "#" * int(share * 30)
        self.stream.write(f"\r{phase:>8}: [{bar:<30}] {share:4.0%}")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


class Command(BaseCommand):
    help = (
        "Import customers from a CSV file (UTF-8; comma, semicolon or tab). Upserts by "
        "customer ID. A file with invalid rows imports nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the CSV file")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar='"Source column=field"',
            help="map a column the importer does not recognise to a customer field",
        )
        parser.add_argument("--skip-invalid", action="store_true", help="import the valid rows")
        parser.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, **options):
        progress = ProgressBar(sys.stderr, not options["no_progress"] and sys.stderr.isatty())
        try:
            report = customers_import_file(
                path=options["file"],
                column_map=parse_mapping_option(options["map"]),
                skip_invalid=options["skip_invalid"],
                dry_run=options["dry_run"],
                progress=progress,
            )
        except FileNotFoundError:
            raise CommandError(f"{options['file']}: no such file") from None
        except IsADirectoryError:
            raise CommandError(f"{options['file']}: is a folder, not a file") from None
        except CsvFormatError as problem:
            raise CommandError(f"{options['file']}: {problem}") from None
        finally:
            progress.finish()
        self.print_report(report, options["file"])
        if report.error_count and not options["skip_invalid"]:
            raise CommandError(
                f"{report.error_count} problem(s) in {report.invalid_rows} row(s); "
                "nothing was imported. Fix the file, or pass --skip-invalid to import "
                "the valid rows."
            )

    def print_report(self, report: ImportReport, name: str) -> None:
        write = self.stdout.write
        columns = ", ".join(f"{header!r} -> {field}" for field, header in report.columns.items())
        write(f"{name}: {report.rows_read} data rows; columns {columns}")
        if report.ignored_columns:
            write(f"Ignored columns (not customer fields): {', '.join(report.ignored_columns)}")
        if report.blank_lines:
            write(f"Skipped {report.blank_lines} blank line(s).")
        for error in report.errors:
            self.stderr.write(f"  {error}")
        if report.error_count > len(report.errors):
            self.stderr.write(f"  ... and {report.error_count - len(report.errors)} more")
        if report.written:
            write(
                self.style.SUCCESS(
                    f"Imported: {report.created} created, {report.updated} updated, "
                    f"{report.unchanged} unchanged"
                    + (
                        f", {report.invalid_rows} invalid row(s) skipped"
                        if report.error_count
                        else ""
                    )
                )
            )
        elif report.dry_run and not report.error_count:
            write(self.style.SUCCESS(f"Dry run: all {report.valid_rows} rows are valid."))
