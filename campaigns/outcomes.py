"""Outcomes of a campaign: read a results file (or the API's JSON), check every row, and
store them all or nothing.

The file is read by the customer importer's reader (customers.services: encoding and
delimiter checks, quotes, blank lines) with its row-level report (row, column, value,
reason). Columns other than the customer ID, converted and revenue are ignored and
reported. A row for a customer outside the campaign is reported and never counted.
Campaign members without a row count as not converted, with no revenue: a campaign tool
often reports only the customers who bought.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db import transaction

from campaigns.models import Campaign, Outcome, OutcomeImport
from customers.catalogue import normalise_header
from customers.csv_format import (
    CsvFormatError,
    Invalid,
    RowError,
    is_missing,
    parse_customer_id,
    parse_number,
    unguard,
)
from customers.files import delimiter_of, first_rows, records

MAX_REPORTED = 1_000
# Header names each column is recognised by (compared after normalise_header).
ALIASES = {
    "customer_id": ("customerid", "customer", "id", "clientid", "customerno", "custid"),
    "converted": (
        "converted",
        "conversion",
        "purchased",
        "bought",
        "responded",
        "response",
        "outcome",
        "result",
    ),
    "revenue": ("revenue", "amount", "value", "sales", "ordervalue", "spend", "total"),
}
REQUIRED = ("customer_id", "converted")
YES = frozenset({"yes", "y", "true", "t", "1", "converted"})
NO = frozenset({"no", "n", "false", "f", "0", "not converted"})


@dataclass(frozen=True)
class OutcomeRow:
    row: int
    customer_id: str
    converted: bool
    revenue: float


@dataclass
class OutcomeReport:
    """What an outcomes import found and did: the page, the command and the API show it."""

    source: str = ""
    rows_read: int = 0
    counted: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    outsider_count: int = 0
    outsiders: list[tuple[int, str]] = field(default_factory=list)  # (row, customer ID)
    ignored_columns: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # field -> header
    blank_lines: int = 0
    members_without_row: int = 0
    written: bool = False
    import_id: int | None = None

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(error)

    def add_outsider(self, row: int, customer_id: str) -> None:
        self.outsider_count += 1
        if len(self.outsiders) < MAX_REPORTED:
            self.outsiders.append((row, customer_id))

    def as_json(self) -> dict:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "counted": self.counted,
            "written": self.written,
            "import_id": self.import_id,
            "columns": self.columns,
            "ignored_columns": self.ignored_columns,
            "members_without_row": self.members_without_row,
            "outsiders": {
                "count": self.outsider_count,
                "rows": [{"row": r, "customer_id": c} for r, c in self.outsiders],
            },
            "errors": [
                {"row": e.row, "column": e.column, "value": e.value, "reason": e.reason}
                for e in self.errors
            ],
            "error_count": self.error_count,
        }


def parse_converted(value) -> bool:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or value.strip().lower() not in YES | NO:
        raise Invalid("is not yes or no (yes/no, true/false, 1/0)")
    return value.strip().lower() in YES


def parse_revenue(value, *, decimal_comma: bool = False) -> float:
    """A revenue; blank means none (0). Negative is a refund."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid("is not a number")
    if isinstance(value, int | float):
        if abs(value) > 1e15 or not math.isfinite(value):
            raise Invalid("is not a finite number")
        return float(value)
    text = unguard(value.strip())
    if is_missing(text):
        return 0.0
    return parse_number(text, decimal_comma=decimal_comma)


def _map_headers(headers: list[str]) -> tuple[dict[str, int], list[str]]:
    positions: dict[str, int] = {}
    ignored = []
    for index, header in enumerate(headers):
        name = normalise_header(header)
        target = next((f for f, names in ALIASES.items() if name in names), "")
        if not target or target in positions:
            ignored.append(header.strip() or f"Column {index + 1}")
        else:
            positions[target] = index
    missing = [f for f in REQUIRED if f not in positions]
    if missing:
        raise CsvFormatError(
            f"the header row ({', '.join(h.strip() for h in headers[:8])}) has no "
            + " and no ".join(
                {"customer_id": "customer ID", "converted": "converted"}[f] for f in missing
            )
            + " column; name them customer_id, converted and (optionally) revenue"
        )
    return positions, ignored


def read_outcome_file(stream: BinaryIO, report: OutcomeReport) -> Iterator[OutcomeRow | None]:
    """Rows of an outcomes CSV (None for an invalid row, whose errors go to the report)."""
    delimiter = delimiter_of(stream)
    header = first_rows(stream, delimiter, 1)
    if not header:
        raise CsvFormatError("the file is empty")
    positions, report.ignored_columns = _map_headers(header[0])
    report.columns = {f: header[0][i].strip() for f, i in positions.items()}
    width = len(header[0])
    header_pending = True
    for line, cells in records(stream, delimiter):
        if not any(cell.strip() for cell in cells):
            report.blank_lines += 1
            continue
        if header_pending:
            header_pending = False
            continue
        report.rows_read += 1
        if len(cells) != width:
            report.add_error(
                RowError(
                    line,
                    "",
                    ",".join(cells[:8])[:200],
                    f"has {len(cells)} values where the header has {width} columns",
                )
            )
            yield None
            continue
        yield _row(
            line,
            {f: (header[0][i], cells[i]) for f, i in positions.items()},
            report,
            delimiter != ",",
        )


def _row(
    line: int, cells: dict[str, tuple[str, object]], report: OutcomeReport, decimal_comma: bool
):
    """One row from {field: (column name, value)}; errors go to the report."""
    parsers = {
        "customer_id": lambda v: parse_customer_id(v) if isinstance(v, str) else _not_text(),
        "converted": parse_converted,
        "revenue": lambda v: parse_revenue(v, decimal_comma=decimal_comma),
    }
    values, bad = {}, False
    for name, (column, value) in cells.items():
        try:
            values[name] = parsers[name](value)
        except Invalid as problem:
            label = {"customer_id": "customer ID"}.get(name, name)
            report.add_error(
                RowError(
                    line, column, "" if value is None else str(value), f"{label} {problem.reason}"
                )
            )
            bad = True
    if "converted" not in values and not bad:
        report.add_error(RowError(line, "converted", "", "converted is missing; write yes or no"))
        bad = True
    if bad:
        return None
    return OutcomeRow(line, values["customer_id"], values["converted"], values.get("revenue", 0.0))


def _not_text():
    raise Invalid("must be text")


JSON_FIELDS = ("customer_id", "converted", "revenue")


def read_outcome_json(items: list, report: OutcomeReport) -> Iterator[OutcomeRow | None]:
    """Rows of the API's ``{"outcomes": [...]}``; a row number is the item's index, a
    column its field (reported as outcomes[i].field)."""
    ignored = set()
    for index, item in enumerate(items):
        report.rows_read += 1
        if not isinstance(item, dict):
            report.add_error(RowError(index, "", "", "each outcome must be an object"))
            yield None
            continue
        ignored.update(k for k in item if k not in JSON_FIELDS)
        cells = {f: (f, item.get(f)) for f in JSON_FIELDS if f in item}
        if "customer_id" not in cells:
            report.add_error(RowError(index, "customer_id", "", "customer ID is missing"))
            yield None
            continue
        yield _row(index, cells, report, False)
    report.ignored_columns = sorted(ignored)


def outcomes_import(
    *,
    campaign: Campaign,
    rows: Iterable[OutcomeRow | None],
    report: OutcomeReport,
    user=None,
    dry_run: bool = False,
) -> OutcomeReport:
    """Check every row, then (no errors, not ``dry_run``) replace the campaign's outcomes
    with these in one transaction. Repeated IDs are errors; outsiders are reported."""
    members = dict(campaign.members.values_list("customer__customer_id", "pk"))
    kept: dict[int, OutcomeRow] = {}
    first_row: dict[str, int] = {}
    for row in rows:
        if row is None:
            continue
        if row.customer_id in first_row:
            report.add_error(
                RowError(
                    row.row,
                    report.columns.get("customer_id", "customer_id"),
                    row.customer_id,
                    f"customer ID repeated (first on row {first_row[row.customer_id]})",
                )
            )
            continue
        first_row[row.customer_id] = row.row
        member = members.get(row.customer_id)
        if member is None:
            report.add_outsider(row.row, row.customer_id)
            continue
        kept[member] = row
    report.counted = len(kept)
    report.members_without_row = len(members) - len(kept)
    if report.error_count or dry_run:
        report.counted = 0 if report.error_count else report.counted
        return report
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(id=campaign.id).first()
        Outcome.objects.filter(member__campaign=campaign).delete()
        Outcome.objects.bulk_create(
            (
                Outcome(member_id=m, converted=r.converted, revenue=r.revenue)
                for m, r in kept.items()
            ),
            batch_size=5_000,
        )
        record = OutcomeImport.objects.create(
            campaign=campaign,
            source=report.source[:255],
            rows=report.rows_read,
            counted=report.counted,
            outsiders=report.outsider_count,
            ignored_columns=report.ignored_columns,
            imported_by=user if user is not None and user.is_authenticated else None,
        )
    report.written, report.import_id = True, record.id
    return report


def outcomes_import_stream(
    *, campaign: Campaign, stream: BinaryIO, source: str, user=None, dry_run: bool = False
) -> OutcomeReport:
    """Import an outcomes CSV. A file that cannot be read at all raises CsvFormatError."""
    report = OutcomeReport(source=source)
    return outcomes_import(
        campaign=campaign,
        rows=read_outcome_file(stream, report),
        report=report,
        user=user,
        dry_run=dry_run,
    )
