"""The order-log format: which column holds what, and what a valid purchase row is.

Pure Python (no database), shared by import_transactions and its tests. Values follow
the customer importer's rules (customers.csv_format): plain decimal numbers, IDs without
control characters, a row report naming row, column, value and reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time

from customers.catalogue import normalise_header
from customers.csv_format import (
    CsvFormatError,
    Invalid,
    RowError,
    is_missing,
    parse_category,
    parse_customer_id,
    parse_number,
)
from purchases.dates import AmbiguousDates, DateFormat, UnknownDates, detect_format

# The longest order ID kept: the model, the staging table and the row check read it.
ORDER_ID_MAX_LENGTH = 64
MAX_QUANTITY = 1_000_000  # larger is not a quantity (a value in the wrong column)
FIELDS = ("customer_id", "date", "amount", "quantity", "order_id", "product")
REQUIRED = ("customer_id", "date", "amount")
LABELS = {
    "customer_id": "customer ID",
    "date": "date",
    "amount": "amount",
    "quantity": "quantity",
    "order_id": "order ID",
    "product": "product",
}
ALIASES = {
    "customer_id": ("customerid", "customer", "id", "custid", "clientid", "customerno"),
    "date": ("date", "orderdate", "purchasedate", "invoicedate", "transactiondate", "day"),
    "amount": ("amount", "total", "value", "revenue", "sales", "spend", "price", "dollars"),
    "quantity": ("quantity", "qty", "units", "count", "items"),
    "order_id": ("orderid", "order", "invoice", "invoiceno", "transactionid", "receipt"),
    "product": ("product", "category", "sku", "item", "stockcode", "description"),
}


class MissingColumns(CsvFormatError):
    """No column holds a required field: the upload page then asks for the columns."""


def recognise(header: str) -> str:
    name = normalise_header(header)
    return next((field for field, names in ALIASES.items() if name in names), "")


def parse_columns_option(text: str) -> list[str]:
    """``--columns customer_id,date,quantity,amount`` (``-`` or an empty name: unused)."""
    names = [part.strip() for part in text.split(",")]
    unknown = [n for n in names if n and n != "-" and n not in FIELDS]
    if unknown:
        raise CsvFormatError(
            f"--columns: {', '.join(unknown)} unknown; use {', '.join(FIELDS)} (or - to skip)"
        )
    return ["" if n == "-" else n for n in names]


@dataclass(frozen=True)
class TransactionMapping:
    headers: tuple[str, ...]
    positions: dict[str, int]

    def header_of(self, field: str) -> str:
        return self.headers[self.positions[field]]


def map_transaction_columns(
    headers: Sequence[str], explicit: Mapping[str, str] | Sequence[str] | None = None
) -> TransactionMapping:
    """Positions of the fields: by the user's choice (names, or a field per position),
    else by recognised header names. Refuses a file missing a required field."""
    headers = tuple(headers)
    if isinstance(explicit, Sequence) and not isinstance(explicit, str):
        if len(explicit) != len(headers):
            raise CsvFormatError(
                f"{len(explicit)} column names given, but the file has {len(headers)} columns"
            )
        targets = list(explicit)
    else:
        chosen = dict(explicit or {})
        targets = [chosen.get(h, "") or recognise(h) for h in headers]
    positions: dict[str, int] = {}
    for index, target in enumerate(targets):
        if not target:
            continue
        if target in positions:
            raise CsvFormatError(
                f"columns {headers[positions[target]]!r} and {headers[index]!r} both hold the "
                f"{LABELS[target]}; keep one"
            )
        positions[target] = index
    missing = [LABELS[f] for f in REQUIRED if f not in positions]
    if missing:
        raise MissingColumns(
            f"no column for the {', '.join(missing)} (columns: "
            f"{', '.join(repr(h) for h in headers[:10])}); name them with --map "
            '"Column=field" or, for a file without a header row, --columns '
            "customer_id,date,quantity,amount"
        )
    return TransactionMapping(headers, positions)


@dataclass(frozen=True)
class PurchaseRow:
    customer_id: str
    date: date
    time: time | None
    amount: float
    quantity: int | None
    order_id: str
    product: str


def parse_purchase(
    cells: Sequence[str],
    row_number: int,
    mapping: TransactionMapping,
    date_format: DateFormat,
    *,
    decimal_comma: bool = False,
) -> tuple[PurchaseRow | None, list[RowError]]:
    if len(cells) != len(mapping.headers):
        return None, [
            RowError(
                row_number,
                "",
                " ".join(cells)[:80],
                f"has {len(cells)} values where the file has {len(mapping.headers)} columns",
            )
        ]
    values: dict = {"quantity": None, "order_id": "", "product": "", "time": None}
    errors = []
    for field, position in mapping.positions.items():
        text = cells[position]
        try:
            values.update(_parse(field, text, date_format, decimal_comma))
        except Invalid as problem:
            reason = f"{LABELS[field]} {problem.reason}"
            errors.append(RowError(row_number, mapping.headers[position], text, reason))
    if errors:
        return None, errors
    return PurchaseRow(**values), []


def _parse(field: str, text: str, date_format: DateFormat, decimal_comma: bool) -> dict:
    if field == "customer_id":
        return {"customer_id": parse_customer_id(text)}
    if field == "date":
        if is_missing(text):
            raise Invalid("is empty; every purchase needs a date")
        try:
            moment = date_format.parse(text)
        except ValueError as problem:
            raise Invalid(str(problem)) from None
        has_time = moment.time() != time(0) or len(text.strip()) > 10
        return {"date": moment.date(), "time": moment.time() if has_time else None}
    if field == "amount":
        if is_missing(text):
            raise Invalid("is empty")
        return {"amount": parse_number(text, decimal_comma=decimal_comma)}
    if field == "quantity":
        if is_missing(text):
            return {}
        value = parse_number(text, decimal_comma=decimal_comma)
        if value != int(value) or abs(value) > MAX_QUANTITY:
            raise Invalid("must be a whole number")
        return {"quantity": int(value)}
    if is_missing(text):
        return {}
    value = parse_category(text)
    if field == "order_id" and len(value) > ORDER_ID_MAX_LENGTH:
        raise Invalid(f"is longer than {ORDER_ID_MAX_LENGTH} characters")
    return {field: value}


def guess_columns(rows: Sequence[Sequence[str]], header_row: bool) -> list[str]:
    """A first guess at what each column holds, for the page's column step.

    With a header, by the names; without, by the values: the first column that reads as
    dates is the date, the first other column the customer ID, the last column of numbers
    with decimals the amount and a column of whole numbers the quantity."""
    if not rows:
        return []
    if header_row:
        return [recognise(cell) for cell in rows[0]]
    width = len(rows[0])
    columns = [[r[i].strip() for r in rows if len(r) == width] for i in range(width)]
    guesses = [""] * width
    dates = [i for i, values in enumerate(columns) if _all_dates(values)]
    if dates:
        guesses[dates[0]] = "date"
    free = [i for i in range(width) if not guesses[i]]
    if free:
        guesses[free.pop(0)] = "customer_id"
    numeric = [i for i in free if all(_is_number(v) for v in columns[i] if v)]
    decimal = [i for i in numeric if any("." in v or "," in v for v in columns[i])]
    amount = (decimal or numeric or [None])[-1]
    if amount is not None:
        guesses[amount] = "amount"
        whole = [i for i in numeric if i != amount and i not in decimal]
        if whole:
            guesses[whole[0]] = "quantity"
    return guesses


def _all_dates(values: Sequence[str]) -> bool:
    try:
        detect_format(values)
    except AmbiguousDates:
        return True
    except UnknownDates:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        parse_number(text, decimal_comma="," in text and "." not in text)
    except Invalid:
        return False
    return True
