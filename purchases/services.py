"""Database work on purchases: import order logs, keep RFM values current.

An import reads the file in passes and never holds it: the top of the file decides the
delimiter, the header (or the named columns) and the date format; a pass hashes the
content; the write pass reads the rows in chunks, checks each chunk's columns at once
(purchases.chunk_checks) and adds its purchases in a few statements inside one
transaction, creating the customers the file names (unless --existing-only). The same
content is never imported twice, and an order ID already imported from another file is
skipped.
"""

from __future__ import annotations

import gc
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import BinaryIO, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from customers.catalogue import CUSTOMER_ID_MAX_LENGTH, TEXT_MAX_LENGTH
from customers.csv_format import CsvFormatError, RowError
from customers.files import (
    delimiter_of,
    first_rows,
    records,
    stream_size,
)
from customers.models import Customer
from purchases.chunk_checks import CheckedChunk, PurchaseColumns, check_chunk
from purchases.dates import DateFormat, detect_format, format_by_key
from purchases.models import CustomerRfm, Purchase, PurchaseFile
from purchases.rfm import group_case_sql
from purchases.transaction_format import (
    ORDER_ID_MAX_LENGTH,
    TransactionMapping,
    map_transaction_columns,
    recognise,
)

# Rows read, checked and written at a time: each chunk costs a few statements, and
# 100,000 rows take about 60 MB while they are checked.
CHUNK_ROWS = 100_000
IMPORT_WORK_MEM = "64MB"  # the import transaction's sort memory on PostgreSQL
SAMPLE_ROWS = 1_000
MAX_REPORTED_ERRORS = 1_000
# Planner settings of the RFM refresh's transaction on PostgreSQL (see rfm_refresh).
RFM_PLANNER_SETTINGS = (
    "work_mem = '512MB'",
    "enable_hashagg = off",
    "enable_indexscan = off",
    "enable_bitmapscan = off",
)
ANALYZE_AFTER_ROWS = 100_000

ProgressCallback = Callable[[str, int, int], None]
T = TypeVar("T")


class RepeatedFile(CsvFormatError):
    """This content was imported before."""


class NoHeaderRow(CsvFormatError):
    """The first row names no known column: the user must say what the columns hold."""


@dataclass
class TransactionReport:
    rows_read: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    blank_lines: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    header_row: bool = True
    delimiter: str = ","
    date_format: str = ""
    customers_created: int = 0
    purchases_added: int = 0
    skipped_orders: int = 0
    dry_run: bool = False
    written: bool = False
    file_id: int | None = None
    rfm_customers: int = 0
    rfm_seconds: float | None = None  # how long bringing RFM up to date took

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True)
class LogLayout:
    delimiter: str
    header_row: bool
    mapping: TransactionMapping
    date_format: DateFormat

    @property
    def decimal_comma(self) -> bool:
        return self.delimiter != ","


@dataclass(frozen=True)
class TransactionOptions:
    column_names: Sequence[str] = ()  # what the columns hold, in order
    header_row: bool = False  # with column_names: the file has a header row all the same
    explicit: Mapping[str, str] | None = None  # header -> field
    date_format: str | None = None
    skip_invalid: bool = False
    dry_run: bool = False
    existing_only: bool = False
    file_name: str = ""
    user: object = None


DEFAULT_OPTIONS = TransactionOptions()


def read_log_layout(stream: BinaryIO, options: TransactionOptions = DEFAULT_OPTIONS) -> LogLayout:
    """Delimiter, header, columns and date format from the top of the file."""
    delimiter = delimiter_of(stream)
    rows = first_rows(stream, delimiter, SAMPLE_ROWS + 1)
    if not rows:
        raise CsvFormatError("the file is empty")
    if options.column_names:
        header_row = options.header_row
        headers = rows[0] if header_row and len(rows[0]) == len(options.column_names) else None
        headers = headers or [n or f"Column {i + 1}" for i, n in enumerate(options.column_names)]
        explicit = list(options.column_names)
    else:
        header_row = any(recognise(cell) for cell in rows[0])
        if not header_row:
            raise NoHeaderRow(
                f"the first row ({' '.join(rows[0][:6])}) names no known column, so the file "
                "has no header row: say what its columns hold, in order, e.g. "
                "--columns customer_id,date,quantity,amount"
            )
        headers, explicit = rows[0], options.explicit
    mapping = map_transaction_columns(headers, explicit)
    data = rows[1:] if header_row else rows
    date_column = mapping.positions["date"]
    if options.date_format:
        date_format = format_by_key(options.date_format)
    else:
        date_format = detect_format(r[date_column] for r in data if len(r) > date_column)
    return LogLayout(delimiter, header_row, mapping, date_format)


def iter_chunks(
    stream: BinaryIO,
    layout: LogLayout,
    report: TransactionReport,
    progress: ProgressCallback | None = None,
    phase: str = "checking",
    *,
    ahead: bool = False,
) -> Iterator[CheckedChunk]:
    """The file's purchase rows checked a chunk at a time (the report counts them). With
    ``ahead``, a thread of its own reads and checks the next chunk, and writes its COPY
    lines, while the caller writes this one."""
    total = stream_size(stream)
    chunks = _checked_chunks(stream, layout, report)
    if ahead:
        chunks = _read_ahead(chunks, lambda item: item[0].purchases.copy_lines)
    for chunk, position in chunks:
        _count(report, chunk)
        yield chunk
        if progress:
            progress(phase, position, total)


def _checked_chunks(
    stream: BinaryIO, layout: LogLayout, report: TransactionReport
) -> Iterator[tuple[CheckedChunk, int]]:
    """Each chunk and where the file was read to."""
    reader = records(stream, layout.delimiter)
    try:
        if layout.header_row:
            _skip_header(reader, report)
        while True:
            with _collector_paused():
                block = list(islice(reader, CHUNK_ROWS))
                if not block:
                    break
                chunk = check_chunk(
                    block, layout.mapping, layout.date_format, decimal_comma=layout.decimal_comma
                )
                del block  # its row lists go now, not after the chunk is written
            yield chunk, stream.tell()
    finally:
        reader.close()  # detaches the text reader from the stream


def _read_ahead(items: Iterator[T], prepare: Callable[[T], object]) -> Iterator[T]:
    """``items``, each made and prepared in a thread of its own while the caller works on
    the one before. On PostgreSQL the database adds a chunk in its own process while
    Python reads and checks the next one (at two million rows on two shared cores this
    saved 1-2 s of 21). An error in the thread comes out of this iterator; when the
    caller stops, so does the thread, and closes ``items`` (the file's reader) there."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stopped = threading.Event()

    def hand(message: tuple[str, object]) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for item in items:
                prepare(item)
                if not hand(("item", item)):
                    return
            hand(("end", None))
        except BaseException as problem:  # noqa: BLE001 - raised again in the caller
            hand(("error", problem))
        finally:
            items.close()

    thread = threading.Thread(target=make, name="purchase-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stopped.set()
        thread.join()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A chunk holds a list per row, 100,000 of them, none in a reference cycle; Python's
    cyclic garbage collector went through them again and again as they were made, which
    tripled the time of reading and checking a chunk."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _skip_header(reader: Iterator[tuple[int, list[str]]], report: TransactionReport) -> None:
    """The header is the first row that is not blank."""
    for _line, cells in reader:
        if any(cell.strip() for cell in cells):
            return
        report.blank_lines += 1


def _content_hash(stream: BinaryIO) -> str:
    stream.seek(0)
    digest = hashlib.sha256()
    while block := stream.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def transactions_import_file(
    *,
    path: str | Path,
    options: TransactionOptions = DEFAULT_OPTIONS,
    progress: ProgressCallback | None = None,
) -> TransactionReport:
    with open(path, "rb") as stream:
        return transactions_import(stream=stream, options=options, progress=progress)


def transactions_import(
    *,
    stream: BinaryIO,
    options: TransactionOptions = DEFAULT_OPTIONS,
    progress: ProgressCallback | None = None,
) -> TransactionReport:
    """Validate an order log and, unless told otherwise, add its purchases.

    All or nothing: with any invalid row nothing is written unless ``skip_invalid``.
    Raises CsvFormatError when the file as a whole cannot be read, RepeatedFile when the
    same content was imported before."""
    layout = read_log_layout(stream, options)
    report = TransactionReport(
        columns={f: layout.mapping.header_of(f) for f in layout.mapping.positions},
        header_row=layout.header_row,
        delimiter=layout.delimiter,
        date_format=layout.date_format.label,
        dry_run=options.dry_run,
    )
    if options.dry_run:
        for _chunk in iter_chunks(stream, layout, report, progress):
            pass
        _check_has_rows(report)
        return report
    sha256 = _content_hash(stream)
    earlier = PurchaseFile.objects.filter(sha256=sha256).first()
    if earlier:
        raise RepeatedFile(
            f"this file was already imported on {timezone.localtime(earlier.created_at):%d %b %Y}"
            f" ({earlier.file_name}, {earlier.rows:,} purchases); nothing was added"
        )
    # One pass: rows are checked as they are written, and a file with an invalid row (unless
    # skip_invalid) rolls the whole transaction back, so nothing of it stays.
    try:
        with transaction.atomic():
            source = PurchaseFile.objects.create(
                file_name=options.file_name[:255],
                sha256=sha256,
                date_format=layout.date_format.key,
                created_by=options.user
                if getattr(options.user, "is_authenticated", False)
                else None,
            )
            _write(stream, layout, report, source, options, progress)
            _check_has_rows(report)
            if (report.error_count and not options.skip_invalid) or report.valid_rows == 0:
                raise _NothingWritten
            source.rows = report.purchases_added
            source.customers_created = report.customers_created
            source.skipped_orders = report.skipped_orders
            source.save(update_fields=["rows", "customers_created", "skipped_orders"])
            if connection.vendor == "postgresql" and report.purchases_added >= ANALYZE_AFTER_ROWS:
                # Fresh statistics, so the RFM refresh below is planned for the rows that
                # are there (a sampled read, a fraction of a second).
                with connection.cursor() as cursor:
                    cursor.execute(f"ANALYZE {Purchase._meta.db_table}")
            if progress:
                progress("rfm", 1, 1)
            started = time.perf_counter()
            report.rfm_customers = rfm_refresh()
            report.rfm_seconds = round(time.perf_counter() - started, 3)
    except _NothingWritten:
        report.purchases_added = report.customers_created = report.skipped_orders = 0
        return report
    report.written = True
    report.file_id = source.id
    return report


class _NothingWritten(Exception):
    """Roll the import back: the report says why."""


def _count(report: TransactionReport, chunk: CheckedChunk) -> None:
    report.rows_read += chunk.rows
    report.invalid_rows += chunk.invalid_rows
    report.valid_rows = report.rows_read - report.invalid_rows
    report.blank_lines += chunk.blank_lines
    for error in chunk.errors:
        report.add_error(error)


def _check_has_rows(report: TransactionReport) -> None:
    if report.rows_read == 0:
        raise CsvFormatError("the file has no purchase rows; nothing to import")


def _write(stream, layout, report, source, options, progress) -> None:
    postgres = connection.vendor == "postgresql"
    known: dict[str, int] = {}  # customer ID -> the customer's row, as the file names them
    if postgres:
        with connection.cursor() as cursor:  # the sort of a chunk, in memory
            cursor.execute(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'")
    # Valid rows are written even after an invalid one (the transaction is rolled back
    # then), so that a refusal of unknown customers comes as it always came. closing():
    # a failed write stops the reader thread at once.
    chunks = iter_chunks(stream, layout, report, progress, "writing", ahead=postgres)
    with closing(chunks):
        for chunk in chunks:
            if not len(chunk.purchases):
                continue
            if postgres:
                _copy_chunk(chunk.purchases, report, source, options, known)
            else:
                _merge_chunk(chunk.purchases, report, source, options)


def _copy_chunk(
    rows: PurchaseColumns, report, source: PurchaseFile, options, known: dict[str, int]
) -> None:
    """PostgreSQL: the chunk's customers found (or created) by their IDs, each once per
    import; its purchases COPYed, with their customers' rows, into a staging table and
    added from there in one statement. Joining each chunk to all the customers instead
    (a million of them at ten million rows) cost more than the COPY. Not a COPY straight
    into the purchases: the database then waits for every piece of the data, and the
    thread that sends it for Python, busy reading the next chunk."""
    with connection.cursor() as cursor:
        report.customers_created += _find_customers(cursor, rows.customer_id, known, options)
        keep = _not_imported_before(cursor, rows.order_id, source)
        ids = [known[customer_id] for customer_id in rows.customer_id]
        lines = rows.copy_lines
        if keep is not None:
            ids, lines = [ids[i] for i in keep], [lines[i] for i in keep]
        report.skipped_orders += len(rows) - len(ids)
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE_IDS} (customer bigint, date date, "
            f"time time, amount double precision, quantity integer, "
            f"order_id varchar({ORDER_ID_MAX_LENGTH}), product varchar({TEXT_MAX_LENGTH})) "
            "ON COMMIT DROP"
        )
        cursor.execute(f"TRUNCATE {_STAGE_IDS}")
        with cursor.copy(f"COPY {_STAGE_IDS} FROM STDIN") as copy:
            copy.write("".join(map("%s\t%s\n".__mod__, zip(ids, lines))))
        cursor.execute(
            f"INSERT INTO {Purchase._meta.db_table} (customer_id, date, time, amount, "
            "quantity, order_id, product, source_id) SELECT customer, date, time, amount, "
            # In index order: the customer-and-day index then takes each chunk in one
            # sweep instead of 100,000 jumps (0.78 -> 0.57 s a chunk at two million).
            f"quantity, order_id, product, %s FROM {_STAGE_IDS} ORDER BY customer, date",
            [source.id],
        )
        report.purchases_added += cursor.rowcount


_STAGE_IDS = "purchase_import_rows"


def _find_customers(cursor, customer_ids: list[str], known: dict[str, int], options) -> int:
    """Add the customers the chunk is the first to name to ``known``: those that exist,
    then (unless existing_only refuses them) those created; returns how many were."""
    unseen = [c for c in dict.fromkeys(customer_ids) if c not in known]
    if not unseen:
        return 0
    table = Customer._meta.db_table
    cursor.execute(f"SELECT customer_id, id FROM {table} WHERE customer_id = ANY(%s)", [unseen])
    found = dict(cursor.fetchall())
    known.update(found)
    missing = [c for c in unseen if c not in found]
    if not missing:
        return 0
    if options.existing_only:
        raise _unknown_customers(missing)
    now = timezone.now()
    cursor.execute(
        f"INSERT INTO {table} (customer_id, sex, attributes, created_at, updated_at) "
        "SELECT new, 'unknown', CAST('{}' AS jsonb), %s, %s FROM unnest(%s::text[]) AS new "
        "RETURNING customer_id, id",
        [now, now, missing],
    )
    known.update(cursor.fetchall())
    return len(missing)


def _not_imported_before(cursor, order_ids: list[str], source: PurchaseFile) -> list[int] | None:
    """Positions of the rows to keep: those without an order ID imported from another
    file (None: every row)."""
    named = [o for o in set(order_ids) if o]
    if not named:
        return None
    cursor.execute(
        # order_id <> '' lets the database use the partial index of order IDs.
        f"SELECT DISTINCT order_id FROM {Purchase._meta.db_table} WHERE order_id <> '' "
        "AND order_id = ANY(%s) AND source_id <> %s",
        [named, source.id],
    )
    earlier = {row[0] for row in cursor.fetchall()}
    if not earlier:
        return None
    return [i for i, order_id in enumerate(order_ids) if order_id not in earlier]


def _unknown_customers(unknown: list[str]) -> CsvFormatError:
    shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
    return CsvFormatError(
        f"purchases of customers that do not exist ({shown}); nothing was imported. "
        "Import the customers first, or leave out --existing-only to create them"
    )


_STAGE = "purchase_import"
_STAGE_COLUMNS = ("customer_id", "date", "time", "amount", "quantity", "order_id", "product")


def _merge_chunk(rows: PurchaseColumns, report, source: PurchaseFile, options) -> None:
    """SQLite: the chunk staged, then merged by SQL."""
    customers = Customer._meta.db_table
    purchases = Purchase._meta.db_table
    with connection.cursor() as cursor:
        _stage(cursor, rows)
        if options.existing_only:
            _refuse_unknown_customers(cursor, customers)
        now = timezone.now()
        cursor.execute(
            f"INSERT INTO {customers} (customer_id, sex, attributes, created_at, updated_at) "
            f"SELECT DISTINCT s.customer_id, 'unknown', '{{}}', %s, %s FROM {_STAGE} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {customers} c WHERE c.customer_id = s.customer_id)",
            [now, now],
        )
        report.customers_created += max(cursor.rowcount, 0)
        earlier_order = (
            f"s.order_id <> '' AND EXISTS (SELECT 1 FROM {purchases} p "
            "WHERE p.order_id <> '' AND p.order_id = s.order_id AND p.source_id <> %s)"
        )
        cursor.execute(f"SELECT COUNT(*) FROM {_STAGE} s WHERE {earlier_order}", [source.id])
        report.skipped_orders += cursor.fetchone()[0]
        cursor.execute(
            f"INSERT INTO {purchases} (customer_id, date, time, amount, quantity, order_id, "
            f"product, source_id) SELECT c.id, s.date, s.time, s.amount, s.quantity, "
            f"s.order_id, s.product, %s FROM {_STAGE} s JOIN {customers} c "
            f"ON c.customer_id = s.customer_id WHERE NOT ({earlier_order})",
            [source.id, source.id],
        )
        report.purchases_added += cursor.rowcount


def _stage(cursor, rows: PurchaseColumns) -> None:
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (customer_id "
        f"varchar({CUSTOMER_ID_MAX_LENGTH}), date date, "
        f"time time, amount double precision, quantity integer, "
        f"order_id varchar({ORDER_ID_MAX_LENGTH}), product varchar({TEXT_MAX_LENGTH}))"
    )
    cursor.execute(f"DELETE FROM {_STAGE}")
    marks = ", ".join(["%s"] * len(_STAGE_COLUMNS))
    cursor.executemany(
        f"INSERT INTO {_STAGE} ({', '.join(_STAGE_COLUMNS)}) VALUES ({marks})", rows.rows()
    )


def _refuse_unknown_customers(cursor, customers: str) -> None:
    cursor.execute(
        f"SELECT DISTINCT s.customer_id FROM {_STAGE} s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {customers} c WHERE c.customer_id = s.customer_id) LIMIT 6"
    )
    unknown = [row[0] for row in cursor.fetchall()]
    if unknown:
        raise _unknown_customers(unknown)


# --------------------------------------------------------------------------- RFM


def rfm_refresh(*, as_of: date | None = None) -> int:
    """Recompute every customer's RFM values and scores as of ``as_of`` (default: the day
    after the last purchase); returns the customers scored.

    Recency is days since the last purchase; frequency the number of orders when the
    purchases carry order IDs, else of purchase days (two purchases on one day are one
    visit); monetary the total and the mean per purchase (returns included); tenure the
    days since the first purchase; and the mean days between purchase days. Scores are
    quintiles (NTILE(5)): 5 = most recent, most frequent, highest total; equal values
    are split by the customer's internal id, so the same data always gives the same
    scores."""
    table, rfm = Purchase._meta.db_table, CustomerRfm._meta.db_table
    postgres = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cursor:
        # Order IDs are counted only when some purchase has one (the partial index answers,
        # so this comes before the settings below turn index scans off: 0.5 s at 10 M).
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE order_id <> '')")
        with_orders = bool(cursor.fetchone()[0])
        if postgres:
            # Ten million (customer, day) pairs: hashing them spilled to disk and ran on one
            # core (an INSERT is never parallel); sorting them in parallel workers, in
            # memory, into a table of its own took 22 s where the hashed INSERT took 54 s.
            for setting in RFM_PLANNER_SETTINGS:
                cursor.execute(f"SET LOCAL {setting}")
        # TRUNCATE instead of DELETE on PostgreSQL: a million deleted rows would stay behind
        # as dead rows until a vacuum (readers wait for the commit, a few seconds at most).
        empty = f"TRUNCATE {rfm}" if postgres else f"DELETE FROM {rfm}"
        cursor.execute(f"DROP TABLE IF EXISTS {_PER_CUSTOMER}")
        lifetime = " ON COMMIT DROP" if postgres else ""
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_PER_CUSTOMER}{lifetime} AS "
            + _per_customer_sql(table, with_orders)
        )
        if as_of is None:
            # The last day from the per-customer table: MAX(date) of the purchases was one
            # more scan of every purchase (no index on the day alone).
            cursor.execute(f"SELECT MAX(last_day) FROM {_PER_CUSTOMER}")
            last = cursor.fetchone()[0]
            if last is None:
                cursor.execute(empty)
                cursor.execute(f"DROP TABLE IF EXISTS {_PER_CUSTOMER}")
                return 0
            last = date.fromisoformat(str(last)) if not isinstance(last, date) else last
            as_of = date.fromordinal(last.toordinal() + 1)
        cursor.execute(empty)
        with _key_built_after(cursor, rfm) if postgres else nullcontext():
            cursor.execute(_rfm_sql(rfm), {"as_of": as_of})
            scored = cursor.rowcount
        cursor.execute(f"DROP TABLE IF EXISTS {_PER_CUSTOMER}")
        return scored


@contextmanager
def _key_built_after(cursor, table: str):
    """The emptied table's primary key dropped while it is filled and built once after:
    a million rows went in 1.8 s faster than with the key updated row by row (5.8 s). The
    TRUNCATE before already holds the table's lock until the commit, so nobody reads it
    without its key; a duplicate would fail the rebuild and roll everything back."""
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
        [table],
    )
    (key,) = cursor.fetchone()
    cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{key}"')
    yield
    cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{key}" PRIMARY KEY (customer_id)')


def _days(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


_PER_CUSTOMER = "rfm_per_customer"


def _per_customer_sql(purchases: str, with_orders: bool) -> str:
    """Per customer: first and last purchase day, purchase days, purchases, total (and
    orders). Purchase days first (one group per customer and day), then customers, where
    COUNT(DISTINCT date) sorted every customer's purchases once more."""
    orders = (
        f"""LEFT JOIN (SELECT customer_id, COUNT(DISTINCT order_id) AS orders FROM {purchases}
            WHERE order_id <> '' GROUP BY customer_id) o USING (customer_id)"""
        if with_orders
        else ""
    )
    return f"""
        WITH days AS (
            SELECT customer_id, date, COUNT(*) AS purchases, SUM(amount) AS total
            FROM {purchases} GROUP BY customer_id, date
        ), per_customer AS (
            SELECT customer_id, MIN(date) AS first_day, MAX(date) AS last_day,
                   COUNT(*) AS days, SUM(purchases) AS purchases, SUM(total) AS total
            FROM days GROUP BY customer_id
        )
        SELECT per_customer.*, {"COALESCE(o.orders, 0)" if with_orders else "0"} AS orders
        FROM per_customer {orders}
    """


def _rfm_sql(rfm: str) -> str:
    """The values, quintile scores and group of every customer of the per-customer table."""
    as_of = "CAST(%(as_of)s AS date)" if connection.vendor == "postgresql" else "%(as_of)s"
    return f"""
        INSERT INTO {rfm} (customer_id, as_of, recency_days, frequency, monetary_total,
            monetary_mean, tenure_days, interpurchase_days, r_score, f_score, m_score, "group")
        WITH stats AS (SELECT * FROM {_PER_CUSTOMER}
        ), base AS (
            SELECT customer_id, {_days(as_of, "last_day")} AS recency,
                   CASE WHEN orders > 0 THEN orders ELSE days END AS frequency,
                   total, total / purchases AS mean,
                   {_days(as_of, "first_day")} AS tenure,
                   CASE WHEN days > 1
                        THEN CAST({_days("last_day", "first_day")} AS double precision) / (days - 1)
                   END AS interpurchase
            FROM stats
        ), scored AS (
            SELECT base.*,
                   NTILE(5) OVER (ORDER BY recency DESC, customer_id) AS r_score,
                   NTILE(5) OVER (ORDER BY frequency, customer_id) AS f_score,
                   NTILE(5) OVER (ORDER BY total, customer_id) AS m_score
            FROM base
        )
        SELECT customer_id, {as_of}, recency, frequency, total, mean, tenure, interpurchase,
               r_score, f_score, m_score, {group_case_sql("r_score", "f_score")}
        FROM scored
    """


# --------------------------------------------------------------------------- page


@dataclass(frozen=True)
class LogPreview:
    """The top of an order log as the page's column step shows it."""

    delimiter: str
    rows: list[list[str]]
    header_row: bool  # the first row names a known column

    @property
    def width(self) -> int:
        return len(self.rows[0]) if self.rows else 0


def read_log_preview(stream: BinaryIO, rows: int = 50) -> LogPreview:
    """Delimiter and first rows, for a file whose columns the user must name."""
    delimiter = delimiter_of(stream)
    top = first_rows(stream, delimiter, rows)
    if not top:
        raise CsvFormatError("the file is empty")
    return LogPreview(delimiter, top, any(recognise(cell) for cell in top[0]))


def transactions_file_seen(*, stream: BinaryIO) -> PurchaseFile | None:
    """The earlier import of exactly this content, if any (the page warns before confirming)."""
    return PurchaseFile.objects.filter(sha256=_content_hash(stream)).first()
