from __future__ import annotations

import codecs
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from customers.csv_format import CsvFormatError, MappingRequest, parse_mapping_option
from customers.expressions import ExpressionError, parse_derivation
from customers.selectors import catalogue_current
from customers.services import (
    ImportOptions,
    ImportReport,
    NeedsConfirmation,
    customers_import_file,
    id_prefix_for,
)


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


def _list(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


class Command(BaseCommand):
    help = (
        "Import customers from a CSV file (UTF-8, or Windows-1252 after a confirmation; "
        "comma, semicolon, tab or spaces; with or without a header row). Upserts by "
        "customer ID. A file with invalid rows imports nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the file")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar='"Source column=field"',
            help="map a column the importer does not recognise to a customer field",
        )
        parser.add_argument(
            "--attributes",
            metavar="all|COLUMN,COLUMN",
            help="keep other columns as customer attributes: all of them, or the ones named",
        )
        parser.add_argument(
            "--categorical",
            metavar="COLUMN,COLUMN",
            help="attributes to keep as categories even if they hold numbers (codes)",
        )
        parser.add_argument(
            "--derive",
            action="append",
            default=[],
            metavar='"name=[Column A]+[Column B]"',
            help="a column computed from others (+ - * / numbers, parentheses); repeatable",
        )
        parser.add_argument(
            "--id-columns",
            metavar="COLUMN,COLUMN",
            help="without an ID column: make each ID from these columns joined with '-'",
        )
        parser.add_argument(
            "--id-prefix", help="without an ID column: IDs are PREFIX-000001 (default: file name)"
        )
        parser.add_argument(
            "--columns",
            metavar="NAME,NAME",
            help="the file has no header row: these are its columns' names, in order",
        )
        header = parser.add_mutually_exclusive_group()
        header.add_argument("--no-header", action="store_true", help="the first row is data")
        header.add_argument("--header", action="store_true", help="the first row names columns")
        parser.add_argument("--skip-invalid", action="store_true", help="import the valid rows")
        parser.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="go ahead although values look like another unit or many customers change",
        )
        parser.add_argument(
            "--encoding",
            help="the file's encoding (e.g. cp1252, latin-1); by default UTF-8 is expected, "
            "and a file that is not UTF-8 is read as Windows-1252 after --yes",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, **options):
        progress = ProgressBar(sys.stderr, not options["no_progress"] and sys.stderr.isatty())
        path = options["file"]
        encoding = options["encoding"]
        if encoding:
            try:
                encoding = codecs.lookup(encoding).name
            except LookupError:
                raise CommandError(f"--encoding {encoding!r} is not an encoding") from None
        try:
            request = self.request(options)
            report = customers_import_file(
                path=path,
                request=request,
                options=ImportOptions(
                    skip_invalid=options["skip_invalid"],
                    dry_run=options["dry_run"],
                    confirmed=options["yes"],
                    file_name=path,
                ),
                header_row=self.header_row(options),
                column_names=_list(options["columns"]),
                progress=progress,
                encoding=encoding,
            )
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise CommandError(f"{path}: is a folder, not a file") from None
        except (CsvFormatError, ExpressionError) as problem:
            raise CommandError(f"{path}: {problem}") from None
        except NeedsConfirmation as waiting:
            progress.finish()
            self.print_report(waiting.report, path)
            raise CommandError(self.confirmation_text(waiting.report)) from None
        finally:
            progress.finish()
        self.print_report(report, path)
        self.fail_if_nothing_imported(report, options)

    def request(self, options) -> MappingRequest:
        catalogue = catalogue_current()
        attributes = options["attributes"]
        categorical = _list(options["categorical"])
        return MappingRequest(
            explicit=parse_mapping_option(options["map"], catalogue),
            attributes="all" if attributes == "all" else _list(attributes),
            kinds={column: "categorical" for column in categorical},
            derive=tuple(parse_derivation(item) for item in options["derive"]),
            id_columns=_list(options["id_columns"]),
            id_prefix=options["id_prefix"] or id_prefix_for(options["file"]),
        )

    @staticmethod
    def header_row(options) -> bool | None:
        if options["columns"] or options["no_header"]:
            return False
        return True if options["header"] else None

    def fail_if_nothing_imported(self, report: ImportReport, options) -> None:
        if report.error_count and not options["skip_invalid"]:
            # Values in another unit make rows invalid too: say so first, it is the fix.
            units = "".join(f"{question} " for question in report.questions)
            raise CommandError(
                f"{report.error_count} problem(s) in {report.invalid_rows} row(s); "
                f"nothing was imported. {units}Fix the file, or pass --skip-invalid to import "
                "the valid rows."
            )
        if report.valid_rows == 0:
            raise CommandError("no row of the file is valid; nothing was imported.")

    @staticmethod
    def confirmation_text(report: ImportReport) -> str:
        if report.encoding_question:
            question = report.encoding_question
            return (
                f"nothing was imported: {question} Pass {question.option} (or --yes) if the "
                "letters look right, or save the file as 'CSV UTF-8'."
            )
        if report.questions:
            return (
                "nothing was imported: "
                + " ".join(str(q) for q in report.questions)
                + " Pass --yes if the values are right as they are."
            )
        return (
            f"nothing was imported: this file would change {report.updated:,} of the "
            f"{report.existing_customers:,} existing customers ({report.changed_share:.0%}). "
            "Pass --yes to import it anyway."
        )

    def print_report(self, report: ImportReport, name: str) -> None:
        write = self.stdout.write
        columns = ", ".join(f"{header!r} -> {target}" for target, header in report.columns.items())
        header = "" if report.header_row else " (no header row: columns by position)"
        write(
            f"{name}: {report.rows_read:,} data rows, {report.delimiter_name}-separated{header}; "
            f"columns {columns}"
        )
        write(f"Customer IDs from {report.id_source}.")
        if report.encoding_question:
            self.stderr.write(f"Check the encoding: {report.encoding_question}")
        elif report.encoding_name != "UTF-8":
            write(f"Read as {report.encoding_name}.")
        for key, label, kind in report.new_attributes:
            write(f"New attribute: {label} ({kind}, key {key})")
        if report.ignored_columns:
            write(f"Ignored columns: {', '.join(report.ignored_columns)}")
        if report.unused_model_features:
            write(
                "The active model uses "
                + ", ".join(report.unused_model_features)
                + ", which this file does not have: new customers without them are in no "
                "segment until a retrain without those features."
            )
        if report.blank_lines:
            write(f"Skipped {report.blank_lines} blank line(s).")
        for question in report.questions:
            self.stderr.write(f"Check the unit: {question}")
        for error in report.errors:
            self.stderr.write(f"  {error}")
        if report.error_count > len(report.errors):
            self.stderr.write(f"  ... and {report.error_count - len(report.errors)} more")
        if report.written:
            write(
                self.style.SUCCESS(
                    f"Imported (import {report.record_id}): {report.created} created, "
                    f"{report.updated} updated, {report.unchanged} unchanged"
                    + (
                        f", {report.invalid_rows} invalid row(s) skipped"
                        if report.error_count
                        else ""
                    )
                )
            )
        elif report.dry_run:
            write(
                self.style.SUCCESS(
                    f"Dry run: {report.valid_rows:,} of {report.rows_read:,} rows are valid; "
                    "nothing was written."
                )
            )
