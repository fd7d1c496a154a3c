"""Database work on customers: file import (validate, then upsert), undo, and export.

An import reads the file several times and never holds it in memory: a profile of
the first rows (column kinds, the unit check), a validation pass over every row that
finds duplicate IDs with bounded memory (one 64-bit hash per row), and a write pass
in chunks inside one transaction, so a file is stored whole or not at all. Each chunk
goes into a temporary table (COPY on PostgreSQL) and is merged by a few statements
that also keep the values it replaces, so the import can be undone.
"""

from __future__ import annotations

import codecs
import csv
import json
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from customers.catalogue import BUILT_IN_KEYS, Catalogue
from customers.csv_format import (
    DEFAULT_REQUEST,
    FORMULA_STARTS,
    ID,
    WHITESPACE,
    ColumnMapping,
    ColumnProfile,
    CsvFormatError,
    CustomerRow,
    MappingRequest,
    RowError,
    UnitQuestion,
    map_columns,
    parse_number,
    parse_row,
    profile_columns,
    unit_questions,
)
from customers.files import MAX_COLUMNS as MAX_COLUMNS  # the pages bound their choices by it
from customers.files import MAX_FIELD_CHARS as MAX_FIELD_CHARS
from customers.files import (  # the readers both importers share
    SNIFF_BYTES,
    UTF8,
    sniff_delimiter,
)
from customers.files import check_text as _check_text
from customers.files import first_rows as _first_rows
from customers.files import not_utf8_error as _not_utf8_error
from customers.files import open_text as _open_text
from customers.files import records as _records
from customers.files import stream_size as _stream_size
from customers.models import Attribute, Customer, ImportChange, ImportRecord
from customers.selectors import catalogue_current

CHUNK_ROWS = 5_000
WINDOWS_1252 = "cp1252"
_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "cp1252": "Windows-1252 (Western European)",
    "iso8859-1": "Latin-1 (ISO-8859-1)",
    "iso8859-15": "Latin-9 (ISO-8859-15)",
}
MAX_REPORTED_ERRORS = 1_000
PROFILE_ROWS = 10_000
# The customer table's columns an import writes: the ID, then the catalogue's fields.
FIELDS = (ID, *BUILT_IN_KEYS)
VALUE_FIELDS = BUILT_IN_KEYS

ProgressCallback = Callable[[str, int, int], None]


class NeedsConfirmation(Exception):
    """The import would change many existing customers; nothing was written."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("confirmation needed")
        self.report = report


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
    columns: dict[str, str] = field(default_factory=dict)  # target -> column (or expression)
    new_attributes: list[tuple[str, str, str]] = field(default_factory=list)  # key, label, kind
    id_source: str = ""
    header_row: bool = True
    delimiter: str = ","
    questions: list[UnitQuestion] = field(default_factory=list)
    existing_customers: int = 0
    dry_run: bool = False
    written: bool = False
    record_id: int | None = None
    unused_model_features: tuple[str, ...] = ()
    encoding: str = UTF8
    encoding_question: EncodingQuestion | None = None

    @property
    def encoding_name(self) -> str:
        return encoding_name(self.encoding)

    @property
    def absent_fields(self) -> tuple[str, ...]:
        """Built-in fields the file has no column for: existing customers keep theirs."""
        return tuple(f for f in VALUE_FIELDS if f not in self.columns)

    @property
    def delimiter_name(self) -> str:
        return {",": "comma", ";": "semicolon", "\t": "tab", WHITESPACE: "spaces"}.get(
            self.delimiter, repr(self.delimiter)
        )

    @property
    def changed_share(self) -> float:
        return self.updated / self.existing_customers if self.existing_customers else 0.0

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True)
class FileLayout:
    delimiter: str
    header_row: bool
    mapping: ColumnMapping
    questions: tuple[UnitQuestion, ...] = ()
    profiles: tuple[ColumnProfile, ...] = ()
    encoding: str = "utf-8-sig"
    # Set when the file is not UTF-8 and its encoding was guessed: the import waits for a yes.
    encoding_question: EncodingQuestion | None = None

    @property
    def decimal_comma(self) -> bool:
        return self.delimiter != ","


# --------------------------------------------------------------------------- reading


def encoding_name(encoding: str) -> str:
    """An encoding in words, as the report says it."""
    name = codecs.lookup(encoding).name
    return _ENCODING_NAMES.get(name, name.upper())


@dataclass(frozen=True)
class EncodingQuestion:
    """The file is not UTF-8; it reads as ``encoding``, which the user must confirm."""

    encoding: str
    problem: str  # "the file is not UTF-8 text (byte 0xe9 on line 2)"
    sample: str  # a value with letters outside ASCII, as the guessed encoding reads it

    @property
    def name(self) -> str:
        return encoding_name(self.encoding)

    @property
    def option(self) -> str:
        return f"--encoding {codecs.lookup(self.encoding).name}"

    def __str__(self) -> str:
        shown = f", which reads {self.sample!r}" if self.sample else ""
        return f"{self.problem}; it was read as {self.name}{shown}."


def _decodes(stream: BinaryIO, encoding: str) -> bool:
    """Every byte of the stream decodes in ``encoding`` (read in 1 MB blocks)."""
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while block := stream.read(1 << 20):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _detect_encoding(stream: BinaryIO) -> tuple[str, str]:
    """(encoding, problem): UTF-8 when every byte is (problem ""), else Windows-1252 with the
    first byte that is not UTF-8. Windows-1252 is what spreadsheet programs on Western
    European systems save, and reads every Latin-1 letter the same; a file that is neither
    is refused."""
    if _decodes(stream, UTF8):
        return UTF8, ""
    problem = str(_not_utf8_error(stream)).split(";")[0]
    if _decodes(stream, WINDOWS_1252):
        return WINDOWS_1252, problem
    raise CsvFormatError(
        f"{problem}, nor Windows-1252 (Western European); save it as 'CSV UTF-8' and try again"
    )


def _encoding_sample(rows: Sequence[Sequence[str]]) -> str:
    for cells in rows:
        for cell in cells:
            if not cell.isascii():
                return cell.strip()[:40]
    return ""


def _looks_like_header(first: list[str], second: list[str] | None, catalogue: Catalogue) -> bool:
    """A header names columns: it has no numbers (the data below may have none either)."""
    if second is None:
        return True
    if any(catalogue.by_alias(cell) for cell in first if cell.strip()):
        return True
    # "C001 20140101 2 15.5": numbers in the first row are data. Without numbers it names
    # columns, even when the data below has none either ("name,email,city"); a file of
    # text only without a header takes --no-header.
    return not any(_is_number(cell) for cell in first)


def _is_number(text: str) -> bool:
    try:
        parse_number(text, decimal_comma=False)
    except Exception:
        return False
    return True


def read_layout(
    stream: BinaryIO,
    request: MappingRequest = DEFAULT_REQUEST,
    *,
    catalogue: Catalogue | None = None,
    header_row: bool | None = None,
    column_names: Sequence[str] = (),
    encoding: str | None = None,
) -> FileLayout:
    """Check that the stream is customer text and decide how to read its columns.

    ``encoding`` None detects it: UTF-8, or else Windows-1252 with an EncodingQuestion
    on the layout (the import then waits for a confirmation)."""
    catalogue = catalogue or catalogue_current()
    stream.seek(0)
    _check_text(stream.read(SNIFF_BYTES), utf8=False)
    problem = ""
    if encoding is None:
        encoding, problem = _detect_encoding(stream)
    text = _open_text(stream, encoding)
    try:
        first_line = text.readline()
    except UnicodeDecodeError as problem:
        raise CsvFormatError(f"the first line cannot be read: {problem}") from None
    finally:
        text.detach()
    if not first_line.strip():
        raise CsvFormatError("the first line is blank; it must be the header row or data")
    delimiter = sniff_delimiter(first_line)
    rows = _first_rows(stream, delimiter, PROFILE_ROWS + 1, encoding)
    if header_row is None:
        header_row = bool(column_names) is False and _looks_like_header(
            rows[0], rows[1] if len(rows) > 1 else None, catalogue
        )
    headers = _headers(rows[0], header_row, column_names)
    data = rows[1:] if header_row else rows
    profiles = profile_columns(headers, data, decimal_comma=delimiter != ",")
    mapping = map_columns(headers, catalogue, request, profiles)
    questions = unit_questions(mapping, profiles, this_year=timezone.now().year)
    guessed = EncodingQuestion(encoding, problem, _encoding_sample(rows)) if problem else None
    return FileLayout(
        delimiter, header_row, mapping, tuple(questions), tuple(profiles), encoding, guessed
    )


def _headers(first: list[str], header_row: bool, column_names: Sequence[str]) -> list[str]:
    if column_names:
        if len(column_names) != len(first):
            raise CsvFormatError(
                f"--columns names {len(column_names)} columns but the file has {len(first)}"
            )
        return [name.strip() for name in column_names]
    if header_row:
        if not any(h.strip() for h in first):
            raise CsvFormatError("the header row is blank")
        return first
    return [f"Column {i + 1}" for i in range(len(first))]


def iter_rows(
    stream: BinaryIO,
    layout: FileLayout,
    report: ImportReport,
    progress: ProgressCallback | None,
    phase: str = "checking",
) -> Iterator[tuple[int, CustomerRow | None, list[RowError]]]:
    """Yield (line number, customer or None, errors) for every non-blank data row.

    A structural problem (a quote never closed, a runaway field, bytes that are
    not UTF-8) makes every later row unreliable, so it is a CsvFormatError for
    the whole file rather than one invalid row that --skip-invalid could skip.
    """
    total = _stream_size(stream)
    ordinal = 0
    header_pending = layout.header_row
    records = _records(stream, layout.delimiter, quotes=True, encoding=layout.encoding)
    for line, cells, stray_quotes in records:
        if not any(cell.strip() for cell in cells):
            # Empty lines, and the ";;;;" rows spreadsheets leave at the end.
            report.blank_lines += 1
            continue
        if header_pending:
            header_pending = False  # the header row, already mapped
            continue
        ordinal += 1
        customer, errors = parse_row(
            cells,
            line,
            layout.mapping,
            decimal_comma=layout.decimal_comma,
            ordinal=ordinal,
            stray_quotes=stray_quotes,
        )
        yield line, customer, errors
        if progress and ordinal % CHUNK_ROWS == 0:
            progress(phase, stream.tell(), total)


# --------------------------------------------------------------------------- validation


def _validate(
    stream: BinaryIO, layout: FileLayout, report: ImportReport, progress: ProgressCallback | None
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


def _duplicate_errors(stream: BinaryIO, layout: FileLayout, id_hashes: array) -> list[RowError]:
    """Rows repeating an ID seen earlier in the file; a second pass runs only if hashes collide."""
    values, counts = np.unique(np.frombuffer(id_hashes, dtype=np.int64), return_counts=True)
    suspects = set(values[counts > 1].tolist())
    if not suspects:
        return []
    first_row: dict[str, int] = {}
    errors = []
    column = layout.mapping.header_of(ID) if ID in layout.mapping.positions else ""
    for line, customer, _errors in iter_rows(stream, layout, ImportReport(), None):
        if customer is None or hash(customer.customer_id) not in suspects:
            continue
        seen = first_row.setdefault(customer.customer_id, line)
        if seen != line:
            errors.append(
                RowError(line, column, customer.customer_id, f"customer ID repeats row {seen}")
            )
    return errors


def _new_report(layout: FileLayout, dry_run: bool) -> ImportReport:
    mapping = layout.mapping
    return ImportReport(
        ignored_columns=mapping.ignored,
        columns={
            target: mapping.header_of(target)
            for target in (ID, *mapping.targets)
            if target != ID or ID in mapping.positions
        },
        new_attributes=[(f.key, f.label, f.kind) for f in mapping.new_attributes],
        id_source=mapping.id_source(),
        header_row=layout.header_row,
        delimiter=layout.delimiter,
        questions=list(layout.questions),
        existing_customers=Customer.objects.count(),
        dry_run=dry_run,
        unused_model_features=_model_features_missing(mapping),
        encoding=layout.encoding,
        encoding_question=layout.encoding_question,
    )


def _model_features_missing(mapping: ColumnMapping) -> tuple[str, ...]:
    """Features the active model uses that this file has no column for."""
    from clustering.selectors import active_run_features

    return tuple(f for f in active_run_features() if f not in mapping.targets)


# --------------------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportOptions:
    skip_invalid: bool = False
    dry_run: bool = False
    # The user confirmed the unit questions and a change to many existing customers.
    confirmed: bool = False
    file_name: str = ""
    user: object = None


DEFAULT_OPTIONS = ImportOptions()


def customers_import_csv(
    *,
    stream: BinaryIO,
    request: MappingRequest = DEFAULT_REQUEST,
    options: ImportOptions = DEFAULT_OPTIONS,
    header_row: bool | None = None,
    column_names: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    encoding: str | None = None,
) -> ImportReport:
    """Validate a customer file and, unless told otherwise, upsert it by customer ID.

    All or nothing: with any invalid row nothing is written unless ``skip_invalid``;
    unit questions and a change to more than IMPORT_CONFIRM_CHANGED_SHARE of existing
    customers raise NeedsConfirmation unless ``confirmed``, and so does a file that is not
    UTF-8 when ``encoding`` is not given (it is read as the encoding detected). Raises
    CsvFormatError when the file as a whole is unreadable.
    """
    layout = read_layout(
        stream, request, header_row=header_row, column_names=column_names, encoding=encoding
    )
    report = _new_report(layout, options.dry_run)
    _validate(stream, layout, report, progress)
    if report.rows_read == 0:
        raise CsvFormatError("the file has no customer rows; nothing to import")
    blocked = report.error_count and not options.skip_invalid
    if options.dry_run or blocked or report.valid_rows == 0:
        return report
    if (report.questions or report.encoding_question) and not options.confirmed:
        raise NeedsConfirmation(report)
    bad_rows = {error.row for error in report.errors}
    if report.error_count > len(report.errors):
        bad_rows = None  # too many to keep: the write pass re-validates instead
    with transaction.atomic():
        record = _record_start(layout, options)
        _write(stream, layout, report, bad_rows, progress, record)
        if _too_many_changes(report) and not options.confirmed:
            transaction.set_rollback(True)
            raise NeedsConfirmation(report)
        _record_finish(record, report)
    report.written = True
    report.record_id = record.id
    return report


def _too_many_changes(report: ImportReport) -> bool:
    return report.changed_share > settings.IMPORT_CONFIRM_CHANGED_SHARE


def _record_start(layout: FileLayout, options: ImportOptions) -> ImportRecord:
    mapping = layout.mapping
    attributes = [
        Attribute(
            key=f.key,
            label=f.label,
            kind=f.kind,
            source=f.source,
            whole=f.whole,
            expression=f.expression,
            header=f.label if not f.expression else "",
        )
        for f in mapping.new_attributes
    ]
    Attribute.objects.bulk_create(attributes)
    user = options.user if getattr(options.user, "is_authenticated", False) else None
    return ImportRecord.objects.create(
        file_name=options.file_name[:255],
        created_by=user,
        mapping={
            "columns": {t: mapping.header_of(t) for t in mapping.targets},
            "id": mapping.id_source(),
            "delimiter": layout.delimiter,
            "header_row": layout.header_row,
            "encoding": encoding_name(layout.encoding),
        },
        attributes_created=[a.key for a in attributes],
    )


def _record_finish(record: ImportRecord, report: ImportReport) -> None:
    record.created = report.created
    record.updated = report.updated
    record.unchanged = report.unchanged
    record.skipped = report.invalid_rows
    record.save(update_fields=["created", "updated", "unchanged", "skipped"])


def _write(stream, layout, report, bad_rows, progress, record) -> None:
    mapping = layout.mapping
    columns = tuple(c for c in VALUE_FIELDS if c in mapping.targets)
    attributes = tuple(t for t in mapping.targets if t not in BUILT_IN_KEYS)
    writer = ChunkWriter(columns=columns, attributes=attributes, record_id=record.id)
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
            _count(report, writer.write(chunk))
            chunk = []
    if chunk:
        _count(report, writer.write(chunk))


def _count(report: ImportReport, result: tuple[int, int, int]) -> None:
    created, updated, unchanged = result
    report.created += created
    report.updated += updated
    report.unchanged += unchanged


def customers_import_file(*, path: str | Path, **options) -> ImportReport:
    with open(path, "rb") as stream:
        return customers_import_csv(stream=stream, **options)


def customers_upsert(*, rows: list[CustomerRow], columns: Sequence[str] = VALUE_FIELDS):
    """Insert new customers and update changed ones outside any import record (tests,
    demo data); return (created, updated, unchanged)."""
    attributes = sorted({k for row in rows for k in row.values if k not in BUILT_IN_KEYS})
    return ChunkWriter(columns=tuple(columns), attributes=tuple(attributes)).write(rows)


# --------------------------------------------------------------------------- writing


_STAGE = "customer_import"
_STAGE_COLUMNS = (*FIELDS, "attributes")
# What a new customer gets for a field its file does not have.
_DEFAULTS = {"sex": Customer.Sex.UNKNOWN}


class ChunkWriter:
    """Merges chunks of rows into the customer table, keeping what each one replaces.

    Only ``columns`` (and the ``attributes`` keys) of existing customers are compared and
    updated: a file without a sex column must not reset everyone's sex. A row identical
    to the stored customer is not touched, so importing a file twice changes nothing.
    """

    def __init__(self, *, columns: tuple[str, ...], attributes: tuple[str, ...], record_id=None):
        self.columns = columns
        self.attributes = attributes
        self.record_id = record_id
        self.postgres = connection.vendor == "postgresql"

    def write(self, rows: list[CustomerRow]) -> tuple[int, int, int]:
        if not rows:
            return 0, 0, 0
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            self._stage(cursor, rows)
            cursor.execute(
                f"UPDATE {_STAGE} SET existed = EXISTS (SELECT 1 FROM {_table()} c "
                f"WHERE c.customer_id = {_STAGE}.customer_id)"
            )
            cursor.execute(f"SELECT COUNT(*) FROM {_STAGE} WHERE existed")
            existing = cursor.fetchone()[0]
            if self.record_id is not None:
                self._keep_previous(cursor)
            cursor.execute(self._upsert_sql(), [now, now])
            changed = cursor.rowcount
            if self.record_id is not None:
                self._note_created(cursor)
        created = len(rows) - existing
        updated = changed - created
        return created, updated, existing - updated

    def _stage(self, cursor, rows: list[CustomerRow]) -> None:
        json_type = "jsonb" if self.postgres else "text"
        # Dropped with the import's transaction on PostgreSQL; SQLite has no ON COMMIT.
        lifetime = " ON COMMIT DROP" if self.postgres else ""
        columns = ", ".join(
            f"{name} {Customer._meta.get_field(name).db_type(connection)}" for name in FIELDS
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} ({columns}, "
            f"attributes {json_type}, existed boolean){lifetime}"
        )
        # TRUNCATE, not DELETE: a million rows of dead tuples would slow every later chunk.
        cursor.execute(f"{'TRUNCATE' if self.postgres else 'DELETE FROM'} {_STAGE}")
        values = [self._row(row) for row in rows]
        if self.postgres:
            with cursor.copy(f"COPY {_STAGE} ({', '.join(_STAGE_COLUMNS)}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(_STAGE_COLUMNS))
            cursor.executemany(
                f"INSERT INTO {_STAGE} ({', '.join(_STAGE_COLUMNS)}) VALUES ({marks})", values
            )

    def _row(self, row: CustomerRow) -> tuple:
        values = row.values
        attributes = {key: values.get(key) for key in self.attributes}
        return (
            row.customer_id,
            *(_DEFAULTS.get(c) if values.get(c) is None else values[c] for c in VALUE_FIELDS),
            json.dumps(attributes, separators=(",", ":")),
        )

    def _differs(self, stored: str, incoming: str) -> str:
        """True where the ``incoming`` row would change the ``stored`` customer."""
        left = [f"{stored}.{col}" for col in self.columns]
        right = [f"{incoming}.{col}" for col in self.columns]
        if self.attributes:
            # A key holding null and a missing key are the same unknown value.
            left.append(
                f"jsonb_strip_nulls({stored}.attributes)"
                if self.postgres
                else f"json({stored}.attributes)"
            )
            right.append(self._merged(stored, incoming))
        if not left:
            return "FALSE"
        operator = "IS DISTINCT FROM" if self.postgres else "IS NOT"
        return f"({', '.join(left)}) {operator} ({', '.join(right)})"

    def _merged(self, stored: str, incoming: str) -> str:
        """The stored attributes with the file's on top (a blank in the file clears one, as
        JSON merge patch does on SQLite: the key goes)."""
        if self.postgres:
            return f"jsonb_strip_nulls({stored}.attributes || {incoming}.attributes)"
        return f"json_patch({stored}.attributes, {incoming}.attributes)"

    def _upsert_sql(self) -> str:
        table = _table()
        assignments = [f"{col} = EXCLUDED.{col}" for col in self.columns]
        if self.attributes:
            assignments.append(f"attributes = {self._merged(table, 'EXCLUDED')}")
        inserted = ", ".join((*FIELDS, "attributes", "created_at", "updated_at"))
        attributes = "s.attributes" if self.postgres else "json(s.attributes)"
        select = f"SELECT {', '.join(f's.{c}' for c in FIELDS)}, {attributes}, %s, %s"
        conflict = (
            f"DO UPDATE SET {', '.join(assignments)}, updated_at = EXCLUDED.updated_at "
            f"WHERE {self._differs(table, 'EXCLUDED')}"
            if assignments
            else "DO NOTHING"
        )
        # "WHERE true" lets SQLite parse ON CONFLICT after a SELECT.
        return (
            f"INSERT INTO {table} ({inserted}) {select} FROM {_STAGE} s WHERE true "
            f"ON CONFLICT (customer_id) {conflict}"
        )

    def _keep_previous(self, cursor) -> None:
        """Save the values of customers this chunk is about to change."""
        build = "jsonb_build_object" if self.postgres else "json_object"
        attributes = "c.attributes" if self.postgres else "json(c.attributes)"
        previous = ", ".join(f"'{col}', {self._previous(col)}" for col in VALUE_FIELDS)
        cursor.execute(
            f"INSERT INTO {ImportChange._meta.db_table} (record_id, customer_id, previous) "
            f"SELECT %s, c.id, {build}({previous}, 'attributes', {attributes}) "
            f"FROM {_STAGE} s JOIN {_table()} c ON c.customer_id = s.customer_id "
            f"WHERE {self._differs('c', 's')}",
            [self.record_id],
        )

    def _previous(self, column: str) -> str:
        """A stored value as undo keeps it. SQLite's JSON writes a real number with 15
        digits (0.30000000000000004 becomes 0.3); 17 read back as the same float. '%%':
        the query has parameters, so a bare '%' breaks Django's query logging (DEBUG)."""
        if self.postgres or Customer._meta.get_field(column).get_internal_type() != "FloatField":
            return f"c.{column}"
        return (
            f"CASE WHEN c.{column} IS NULL THEN NULL ELSE json(printf('%%!.17g', c.{column})) END"
        )

    def _note_created(self, cursor) -> None:
        cursor.execute(
            f"INSERT INTO {ImportChange._meta.db_table} (record_id, customer_id, previous) "
            f"SELECT %s, c.id, NULL FROM {_STAGE} s JOIN {_table()} c "
            "ON c.customer_id = s.customer_id WHERE NOT s.existed",
            [self.record_id],
        )


def _table() -> str:
    return Customer._meta.db_table


# --------------------------------------------------------------------------- undo


class UndoRefused(Exception):
    """The import cannot be undone; the message says why."""


def import_undo(*, record_id: int, user=None) -> ImportRecord:
    """Restore the values an import replaced and delete the customers it created.

    Refused when the import was undone already, or a later import (not undone) changed
    some of the same customers: undoing would throw that later work away.
    """
    with transaction.atomic():
        record = ImportRecord.objects.select_for_update().get(id=record_id)
        if record.undone_at:
            raise UndoRefused(f"Import {record.id} was already undone.")
        _refuse_if_touched_later(record)
        _restore(record)
        Attribute.objects.filter(key__in=record.attributes_created).delete()
        record.undone_at = timezone.now()
        record.undone_by = user if getattr(user, "is_authenticated", False) else None
        record.save(update_fields=["undone_at", "undone_by"])
    return record


def _refuse_if_touched_later(record: ImportRecord) -> None:
    later = (
        ImportChange.objects.filter(
            record__id__gt=record.id,
            record__undone_at__isnull=True,
            customer_id__in=ImportChange.objects.filter(record=record).values("customer_id"),
        )
        .values_list("record_id", flat=True)
        .first()
    )
    if later:
        raise UndoRefused(
            f"Import {later} changed some of the same customers after import {record.id}; "
            f"undo import {later} first."
        )
    # A later import that changed customers with an attribute this one created.
    users = ImportRecord.objects.filter(
        id__gt=record.id, undone_at__isnull=True, changes__isnull=False
    ).distinct()
    for other in users:
        shared = set(other.mapping.get("columns", {})) & set(record.attributes_created)
        if shared:
            raise UndoRefused(
                f"Import {other.id} used the attribute(s) {', '.join(sorted(shared))} that "
                f"import {record.id} created; undo import {other.id} first."
            )


def _restore(record: ImportRecord) -> None:
    changes = ImportChange.objects.filter(record=record)
    created = changes.filter(previous__isnull=True).values("customer_id")
    Customer.objects.filter(id__in=created).delete()
    for change in changes.filter(previous__isnull=False).iterator(chunk_size=2_000):
        previous = dict(change.previous)
        Customer.objects.filter(id=change.customer_id).update(**previous)


# --------------------------------------------------------------------------- export


class EchoBuffer:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def format_number(value: float | int | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    # The shortest text that reads back as the same float, without an exponent
    # ("1e-05" -> "0.00001"): the importer reads plain decimals only.
    return format(Decimal(repr(float(value))), "f")


def format_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return format_number(value)
    return str(value)


def export_columns(catalogue: Catalogue | None = None) -> tuple[str, ...]:
    """The columns export writes and import reads: the ID, then every catalogue feature."""
    catalogue = catalogue or catalogue_current()
    return (ID, *catalogue.keys)


class SafeCsvWriter:
    """The one CSV writer of the site: every file it writes (the admin's export,
    export_customers, a segment's campaign export) goes through ``row``.

    Text that a spreadsheet would run as a formula (=, +, -, @, a tab or a carriage return
    at the start) gets a leading apostrophe, which spreadsheets show as text and the
    importer takes off again. Numbers are written as plain decimals and never guarded: a
    negative number stays a number. A Decimal is written exactly as it is (0.5000).
    """

    def __init__(self) -> None:
        self._writer = csv.writer(EchoBuffer())

    def row(self, cells: Iterable) -> str:
        return self._writer.writerow([csv_cell(cell) for cell in cells])


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return format_number(value)
    return spreadsheet_safe(str(value))


def customers_export_lines(*, queryset=None) -> Iterator[str]:
    """CSV lines (header first) in the import format, streamed in primary-key chunks."""
    writer = SafeCsvWriter()
    catalogue = catalogue_current()
    columns = export_columns(catalogue)
    yield writer.row(columns)
    queryset = Customer.objects.all() if queryset is None else queryset
    built_in = [c for c in columns if c in FIELDS]
    attributes = [c for c in columns if c not in FIELDS]
    rows = queryset.order_by("pk").values_list(*built_in, "attributes")
    for *values, extra in rows.iterator(chunk_size=5_000):
        extra = extra or {}
        yield writer.row([*values, *(extra.get(a) for a in attributes)])


def spreadsheet_safe(text: str) -> str:
    """Text must not run as a formula when the file opens in a spreadsheet."""
    return "'" + text if text[:1] in FORMULA_STARTS else text


def id_prefix_for(file_name: str) -> str:
    """IDs of a file without an ID column start with its name: 'wholesale-customers'."""
    stem = Path(file_name).stem if file_name else "row"
    return (slugify(stem)[:40] or "row").strip("-") or "row"
