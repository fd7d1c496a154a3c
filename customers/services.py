"""Database work on customers: CSV import (validate, then upsert) and export.

An import reads the file twice. The first pass validates every row and finds
duplicate IDs with bounded memory (one 64-bit hash per row); the second
writes in chunks inside one transaction, so a file is stored whole or not
at all. On PostgreSQL the chunks go through COPY into a temporary table.
"""

from __future__ import annotations

import codecs
import csv
import io
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from customers.csv_format import (
    EXPORT_COLUMNS,
    OPTIONAL_FIELDS,
    ColumnMapping,
    CsvFormatError,
    CustomerRow,
    RowError,
    map_columns,
    parse_row,
)
from customers.models import Customer

CHUNK_ROWS = 5_000
MAX_REPORTED_ERRORS = 1_000
SNIFF_BYTES = 64 * 1024
# A field longer than this is not customer data (an unclosed quote swallowing the file, say).
MAX_FIELD_CHARS = 10_000
FIELDS = ("customer_id", "age", "annual_income", "spending_score", "purchase_frequency", "sex")

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class ImportReport:
    """What an import found and did; the command and the upload page both render it."""

    rows_read: int = 0
    valid_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    blank_lines: int = 0
    error_count: int = 0
    # Counted as rows are read: errors beyond MAX_REPORTED_ERRORS are not kept to count later.
    invalid_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","
    dry_run: bool = False
    written: bool = False

    @property
    def absent_fields(self) -> tuple[str, ...]:
        """Optional fields the file has no column for: existing customers keep theirs."""
        return tuple(f for f in OPTIONAL_FIELDS if f not in self.columns)

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True)
class CsvLayout:
    delimiter: str
    mapping: ColumnMapping


# UTF-32 first: its little-endian byte order mark starts with UTF-16's.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _check_text(head: bytes) -> None:
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise CsvFormatError("the file is empty")
    wide = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    if wide:
        # Spreadsheets' "Unicode text" export: every character has NUL bytes, not binary data.
        raise CsvFormatError(
            f"the file is {wide} text, not UTF-8; save it as 'CSV UTF-8' and try again"
        )
    if b"\x00" in head:
        raise CsvFormatError("this is not a CSV file: it contains binary data")
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        # A multi-byte character cut at the end of a partial sample is not an error.
        if len(head) < SNIFF_BYTES or problem.start < len(head) - 4:
            line = head[: problem.start].count(b"\n") + 1
            raise CsvFormatError(
                f"the file is not UTF-8 text (byte 0x{head[problem.start]:02x} on line {line}); "
                "save it as 'CSV UTF-8' and try again"
            ) from None


def _sniff_delimiter(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _open_text(stream: BinaryIO) -> io.TextIOWrapper:
    stream.seek(0)
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="strict")


def _reader(text: io.TextIOWrapper, delimiter: str):
    csv.field_size_limit(MAX_FIELD_CHARS)
    return csv.reader(text, delimiter=delimiter, strict=True)


def read_layout(
    stream: BinaryIO, explicit_map: Mapping[str, str] | Sequence[str] | None = None
) -> CsvLayout:
    """Check that the stream is CSV text with a usable header row."""
    stream.seek(0)
    _check_text(stream.read(SNIFF_BYTES))
    text = _open_text(stream)
    try:
        first_line = text.readline()
        delimiter = _sniff_delimiter(first_line)
        headers = next(_reader(io.StringIO(first_line), delimiter), [])
    except (csv.Error, UnicodeDecodeError) as problem:
        raise CsvFormatError(f"the header row cannot be read: {problem}") from None
    finally:
        text.detach()
    if not any(h.strip() for h in headers):
        raise CsvFormatError("the first line is blank; it must be the header row")
    return CsvLayout(delimiter=delimiter, mapping=map_columns(headers, explicit_map))


def iter_rows(
    stream: BinaryIO,
    layout: CsvLayout,
    report: ImportReport,
    progress: ProgressCallback | None,
    phase: str = "checking",
) -> Iterator[tuple[int, CustomerRow | None, list[RowError]]]:
    """Yield (row number, customer or None, errors) for every non-blank data row.

    A structural problem (a quote never closed, a runaway field, bytes that are
    not UTF-8) makes every later row unreliable, so it is a CsvFormatError for
    the whole file rather than one invalid row that --skip-invalid could skip.
    """
    total = _stream_size(stream)
    text = _open_text(stream)
    reader = _reader(text, layout.delimiter)
    decimal_comma = layout.delimiter != ","
    line = 1
    rows = 0
    undecodable = False
    try:
        next(reader)  # the header row, already mapped
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as problem:
                # The record that failed starts on the line after the last one read.
                raise CsvFormatError(
                    f"line {line + 1} {_csv_reason(problem)}; nothing after it can be read"
                ) from None
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                # Empty lines, and the ";;;;" rows spreadsheets leave at the end.
                report.blank_lines += 1
                continue
            customer, errors = parse_row(cells, line, layout.mapping, decimal_comma=decimal_comma)
            yield line, customer, errors
            rows += 1
            if progress and rows % CHUNK_ROWS == 0:
                progress(phase, stream.tell(), total)
    except UnicodeDecodeError:
        undecodable = True
    finally:
        text.detach()
    if undecodable:
        raise _not_utf8_error(stream)


def _not_utf8_error(stream: BinaryIO) -> CsvFormatError:
    """Name the line of the first byte that is not UTF-8 (the text reader only knows its chunk)."""
    stream.seek(0)
    for number, raw in enumerate(stream, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as problem:
            return CsvFormatError(
                f"the file is not UTF-8 text (byte 0x{raw[problem.start]:02x} on line {number}); "
                "save it as 'CSV UTF-8' and try again"
            )
    return CsvFormatError("the file is not UTF-8 text; save it as 'CSV UTF-8' and try again")


def _csv_reason(problem: csv.Error) -> str:
    message = str(problem)
    if "field larger than field limit" in message:
        return (
            f"has a value longer than {MAX_FIELD_CHARS:,} characters "
            "(often a quote that is never closed)"
        )
    if "unexpected end of data" in message or "EOF" in message:
        return "has a quote that is never closed"
    return f"cannot be read as CSV: {message}"


def _stream_size(stream: BinaryIO) -> int:
    position = stream.tell()
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(position)
    return size


def _validate(
    stream: BinaryIO, layout: CsvLayout, report: ImportReport, progress: ProgressCallback | None
) -> None:
    """First pass: count rows, collect row errors and duplicate IDs without storing the rows."""
    id_hashes = array("q")
    for _line, customer, errors in iter_rows(stream, layout, report, progress):
        report.rows_read += 1
        if errors:
            report.invalid_rows += 1
        for error in errors:
            report.add_error(error)
        if customer is not None:
            id_hashes.append(hash(customer.customer_id))
    for error in _duplicate_errors(stream, layout, id_hashes):
        # A repeated ID is reported only on rows that are otherwise valid: one more bad row each.
        report.invalid_rows += 1
        report.add_error(error)
    report.valid_rows = report.rows_read - report.invalid_rows


def _duplicate_errors(stream: BinaryIO, layout: CsvLayout, id_hashes: array) -> list[RowError]:
    """Rows repeating an ID seen earlier in the file; a second pass runs only if hashes collide."""
    values, counts = np.unique(np.frombuffer(id_hashes, dtype=np.int64), return_counts=True)
    suspects = set(values[counts > 1].tolist())
    if not suspects:
        return []
    first_row: dict[str, int] = {}
    errors = []
    for line, customer, _errors in iter_rows(stream, layout, ImportReport(), None):
        if customer is None or hash(customer.customer_id) not in suspects:
            continue
        seen = first_row.setdefault(customer.customer_id, line)
        if seen != line:
            column = layout.mapping.header_of("customer_id")
            errors.append(
                RowError(line, column, customer.customer_id, f"customer ID repeats row {seen}")
            )
    return errors


def customers_import_csv(
    *,
    stream: BinaryIO,
    column_map: Mapping[str, str] | Sequence[str] | None = None,
    skip_invalid: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Validate a customer CSV and, unless told otherwise, upsert it by customer ID.

    All or nothing: with any invalid row nothing is written unless ``skip_invalid``.
    Raises CsvFormatError when the file as a whole is unreadable.
    """
    layout = read_layout(stream, column_map)
    report = ImportReport(
        ignored_columns=layout.mapping.ignored,
        columns={f: layout.mapping.header_of(f) for f in layout.mapping.positions},
        delimiter=layout.delimiter,
        dry_run=dry_run,
    )
    _validate(stream, layout, report, progress)
    if report.rows_read == 0:
        raise CsvFormatError("the file has a header row but no customer rows; nothing to import")
    if dry_run or (report.error_count and not skip_invalid) or report.valid_rows == 0:
        return report
    bad_rows = {error.row for error in report.errors}
    if report.error_count > len(report.errors):
        bad_rows = None  # too many to keep: the write pass re-validates instead
    with transaction.atomic():
        _write(stream, layout, report, bad_rows, progress)
    report.written = True
    return report


def _write(stream, layout, report, bad_rows, progress) -> None:
    # A column the file does not have leaves that value of existing customers alone.
    in_file = tuple(c for c in _VALUE_COLUMNS if c in layout.mapping.positions)
    seen_ids: set[str] = set()
    chunk: list[CustomerRow] = []
    for line, customer, _errors in iter_rows(stream, layout, ImportReport(), progress, "writing"):
        if customer is None or (bad_rows is not None and line in bad_rows):
            continue
        if bad_rows is None:
            if customer.customer_id in seen_ids:
                continue
            seen_ids.add(customer.customer_id)
        chunk.append(customer)
        if len(chunk) >= CHUNK_ROWS:
            _count(report, customers_upsert(rows=chunk, columns=in_file))
            chunk = []
    if chunk:
        _count(report, customers_upsert(rows=chunk, columns=in_file))


def _count(report: ImportReport, result: tuple[int, int, int]) -> None:
    created, updated, unchanged = result
    report.created += created
    report.updated += updated
    report.unchanged += unchanged


def customers_import_file(*, path: str | Path, **options) -> ImportReport:
    with open(path, "rb") as stream:
        return customers_import_csv(stream=stream, **options)


_VALUE_COLUMNS = ("age", "annual_income", "spending_score", "purchase_frequency", "sex")


def customers_upsert(
    *, rows: list[CustomerRow], columns: Sequence[str] = _VALUE_COLUMNS
) -> tuple[int, int, int]:
    """Insert new customers and update changed ones; return (created, updated, unchanged).

    Only ``columns`` of existing customers are compared and updated (a file without a sex
    column must not reset everyone's sex to unknown). A row identical to the stored
    customer is not touched, so importing the same file twice changes nothing, not even
    ``updated_at``.
    """
    if not rows:
        return 0, 0, 0
    table = Customer._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            existing, changed = _upsert_postgresql(cursor, table, rows, columns)
        else:
            existing, changed = _upsert_generic(cursor, table, rows, columns)
    created = len(rows) - existing
    updated = changed - created
    return created, updated, existing - updated


def _upsert_sql(table: str, source: str, distinct: str, updated: Sequence[str]) -> str:
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
    stored = ", ".join(f"{table}.{c}" for c in updated)
    incoming = ", ".join(f"EXCLUDED.{c}" for c in updated)
    columns = ", ".join(FIELDS + ("created_at", "updated_at"))
    return (
        f"INSERT INTO {table} ({columns}) {source} "
        f"ON CONFLICT (customer_id) DO UPDATE SET {assignments}, updated_at = EXCLUDED.updated_at "
        f"WHERE ({stored}) {distinct} ({incoming})"
    )


def _row_values(row: CustomerRow, now) -> tuple:
    return (
        row.customer_id,
        row.age,
        row.annual_income,
        row.spending_score,
        row.purchase_frequency,
        row.sex,
        now,
        now,
    )


def _upsert_generic(cursor, table: str, rows: list[CustomerRow], updated) -> tuple[int, int]:
    """SQLite: multi-row VALUES upserts in statements of at most 1,000 rows."""
    now = timezone.now()
    existing = changed = 0
    for start in range(0, len(rows), 1000):
        part = rows[start : start + 1000]
        marks = ", ".join(["%s"] * len(part))
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} WHERE customer_id IN ({marks})",
            [row.customer_id for row in part],
        )
        existing += cursor.fetchone()[0]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(part))
        cursor.execute(
            _upsert_sql(table, f"VALUES {values}", "IS NOT", updated),
            [value for row in part for value in _row_values(row, now)],
        )
        changed += cursor.rowcount
    return existing, changed


def _upsert_postgresql(cursor, table: str, rows: list[CustomerRow], updated) -> tuple[int, int]:
    """PostgreSQL: COPY the chunk into a temporary table, then one INSERT ... SELECT."""
    now = timezone.now()
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS customer_import ("
        "customer_id varchar(64), age integer, annual_income double precision, "
        "spending_score integer, purchase_frequency integer, sex varchar(8), "
        "created_at timestamptz, updated_at timestamptz) ON COMMIT DROP"
    )
    cursor.execute("TRUNCATE customer_import")
    with cursor.copy(
        f"COPY customer_import ({', '.join(FIELDS)}, created_at, updated_at) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(_row_values(row, now))
    cursor.execute(f"SELECT COUNT(*) FROM customer_import i JOIN {table} c USING (customer_id)")
    existing = cursor.fetchone()[0]
    columns = ", ".join(FIELDS + ("created_at", "updated_at"))
    source = f"SELECT {columns} FROM customer_import"
    cursor.execute(_upsert_sql(table, source, "IS DISTINCT FROM", updated))
    return existing, cursor.rowcount


class EchoBuffer:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def format_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def customers_export_lines(*, queryset=None) -> Iterator[str]:
    """CSV lines (header first) in the import format, streamed in primary-key chunks."""
    writer = csv.writer(EchoBuffer())
    yield writer.writerow(EXPORT_COLUMNS)
    queryset = Customer.objects.all() if queryset is None else queryset
    rows = queryset.order_by("pk").values_list(*EXPORT_COLUMNS)
    for customer_id, sex, age, income, score, frequency in rows.iterator(chunk_size=5_000):
        yield writer.writerow(
            (customer_id, sex, age, format_number(income), score, format_number(frequency))
        )
