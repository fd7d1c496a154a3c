"""The customer CSV format: header mapping, value parsing and row validation.

Pure Python (no database), so that the import command, the upload page and
the tests share one definition of what a valid row is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from customers.models import RANGES

# The columns export writes and import reads, in this order.
EXPORT_COLUMNS = (
    "customer_id",
    "sex",
    "age",
    "annual_income",
    "spending_score",
    "purchase_frequency",
)
REQUIRED_FIELDS = ("customer_id", "age", "annual_income", "spending_score")
OPTIONAL_FIELDS = ("purchase_frequency", "sex")
CUSTOMER_ID_MAX_LENGTH = 64

# Header names seen in real files, after normalise_header(); maps to model fields.
HEADER_ALIASES: dict[str, str] = {
    **{
        name: "customer_id"
        for name in (
            "customerid",
            "id",
            "customer",
            "customerno",
            "customernumber",
            "clientid",
            "custid",
        )
    },
    **{name: "sex" for name in ("sex", "gender", "genre")},
    **{name: "age" for name in ("age", "ageyears")},
    **{
        name: "annual_income"
        for name in ("annualincome", "income", "annualincomek", "yearlyincome", "incomek")
    },
    **{name: "spending_score" for name in ("spendingscore", "score", "spending")},
    **{
        name: "purchase_frequency"
        for name in (
            "purchasefrequency",
            "purchases",
            "purchasesperyear",
            "frequency",
            "purchasecount",
            "orders",
            "ordersperyear",
        )
    },
}

SEX_ALIASES: dict[str, str] = {
    **dict.fromkeys(("f", "female", "woman", "w", "femme"), "female"),
    **dict.fromkeys(("m", "male", "man", "homme"), "male"),
    **dict.fromkeys(("o", "other", "x", "nonbinary", "non-binary", "diverse", "d"), "other"),
    **dict.fromkeys(("", "u", "unknown", "n/a", "na", "?", "-", "prefer not to say"), "unknown"),
}


class CsvFormatError(ValueError):
    """The file as a whole cannot be read as customers (one clear message, no row report)."""


class UnclearColumns(CsvFormatError):
    """Required fields have no column, or a field has two: the upload page then asks which
    column holds each field."""

    def __init__(
        self,
        message: str,
        *,
        headers: Iterable[str],
        missing: Iterable[str],
        found: Mapping[str, int],
        ambiguous: Iterable[str] = (),
    ):
        super().__init__(message)
        self.headers = tuple(headers)
        self.missing = tuple(missing)  # required fields without a column
        self.ambiguous = tuple(ambiguous)  # fields more than one column is named for
        self.found = dict(found)  # field -> the position of the one column recognised for it


def normalise_header(name: str) -> str:
    """'Annual Income (k$)' -> 'annualincome': drop case, spaces, punctuation, bracketed units."""
    without_units = re.sub(r"[(\[{].*?[)\]}]", "", name)
    return re.sub(r"[^a-z0-9]", "", without_units.lower())


def parse_mapping_option(items: Iterable[str]) -> dict[str, str]:
    """Turn ``--map "Source column=field"`` options into {source header: field}."""
    mapping = {}
    valid = set(REQUIRED_FIELDS + OPTIONAL_FIELDS)
    for item in items:
        source, sep, field = item.partition("=")
        if not sep or not source.strip() or field.strip() not in valid:
            raise CsvFormatError(
                f'--map {item!r} must look like "Source column=field" with field one of '
                f"{', '.join(sorted(valid))}"
            )
        mapping[source.strip()] = field.strip()
    return mapping


@dataclass(frozen=True)
class ColumnMapping:
    """Which position of the file feeds which field, and what the file has that we ignore."""

    positions: dict[str, int]
    headers: tuple[str, ...]
    ignored: tuple[str, ...]

    def header_of(self, field: str) -> str:
        return self.headers[self.positions[field]]


def map_columns(
    headers: list[str], explicit: Mapping[str, str] | Sequence[str] | None = None
) -> ColumnMapping:
    """Match a header row to customer fields; CsvFormatError when required ones are missing.

    ``explicit`` maps a column (its exact header, or its name as normalise_header reads
    it) to a field, or to "" for a column that holds none; it wins over recognised names.
    A sequence instead gives the field of every column by position (the upload page's
    column choices, which also work for blank or repeated header names).
    """
    by_position = None
    if isinstance(explicit, Sequence) and not isinstance(explicit, str):
        by_position = list(explicit)
        if len(by_position) != len(headers):
            raise CsvFormatError("the file's columns do not match the column choices")
        explicit = None
    exact = dict(explicit or {})
    loose = {normalise_header(k): v for k, v in exact.items()}
    chosen = set(exact.values())
    positions: dict[str, int] = {}
    duplicates: dict[str, list[str]] = {}
    ignored = []
    for index, header in enumerate(headers):
        key = normalise_header(header)
        if by_position is not None:
            field = by_position[index]
        elif header in exact or key in loose:
            field = exact[header] if header in exact else loose[key]
        else:
            field = HEADER_ALIASES.get(key) or HEADER_ALIASES.get(key.replace("_", ""))
            if field in chosen:
                field = None  # the user said which column holds it: this one is not it
        if not field:
            ignored.append(header)
        elif field in positions:
            duplicates.setdefault(field, [headers[positions[field]]]).append(header)
        else:
            positions[field] = index
    missing = [field for field in REQUIRED_FIELDS if field not in positions]
    found = {field: i for field, i in positions.items() if field not in duplicates}
    if duplicates:
        field, (first, second, *_others) = next(iter(duplicates.items()))
        raise UnclearColumns(
            f"columns {first!r} and {second!r} both map to {field}; rename one in the file's "
            'header row (the import command can also take --map "Source column=field")',
            headers=headers,
            missing=missing,
            found=found,
            ambiguous=duplicates,
        )
    if len(positions) == 0:
        raise UnclearColumns(
            "no recognisable customer columns in the header row "
            f"({', '.join(repr(h) for h in headers[:8])}); expected columns such as "
            f"{', '.join(EXPORT_COLUMNS)}",
            headers=headers,
            missing=missing,
            found=found,
        )
    if missing:
        raise UnclearColumns(
            f"missing required column(s): {', '.join(missing)}. The header row has "
            f"{', '.join(repr(h) for h in headers)}. If one of them holds it under another "
            "name, rename it in the file's header row (the import command can also take "
            '--map "Source column=field")',
            headers=headers,
            missing=missing,
            found=found,
        )
    return ColumnMapping(positions=positions, headers=tuple(headers), ignored=tuple(ignored))


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        shown = self.value if len(self.value) <= 40 else self.value[:37] + "..."
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.reason}" + (f" (value {shown!r})" if self.value else "")


@dataclass(frozen=True)
class CustomerRow:
    customer_id: str
    age: int
    annual_income: float
    spending_score: int
    purchase_frequency: int | None
    sex: str


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_number(text: str, *, decimal_comma: bool) -> float:
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if decimal_comma and cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        raise _Invalid("is not a number") from None
    if not math.isfinite(value):
        raise _Invalid("is not a finite number")
    return value


def _parse_whole(text: str, field: str, *, decimal_comma: bool) -> int:
    value = _parse_number(text, decimal_comma=decimal_comma)
    if value != int(value):
        raise _Invalid("must be a whole number")
    return _check_range(int(value), field)


def _check_range(value: float, field: str) -> float:
    bounds = RANGES[field]
    if not bounds.minimum <= value <= bounds.maximum:
        raise _Invalid(f"must be {bounds.describe()}")
    return value


def _parse_field(field: str, text: str, *, decimal_comma: bool):
    text = text.strip()
    if field == "customer_id":
        if not text:
            raise _Invalid("is empty; every customer needs an ID")
        if "\x00" in text:
            # The database cannot store it (PostgreSQL refuses NUL in text).
            raise _Invalid("contains a NUL byte (binary data)")
        if len(text) > CUSTOMER_ID_MAX_LENGTH:
            raise _Invalid(f"is longer than {CUSTOMER_ID_MAX_LENGTH} characters")
        return text
    if field == "sex":
        sex = SEX_ALIASES.get(text.lower())
        if sex is None:
            raise _Invalid("must be female, male, other or unknown (or empty)")
        return sex
    if field == "purchase_frequency" and text == "":
        return None
    if text == "":
        raise _Invalid("is empty")
    if field == "annual_income":
        return _check_range(_parse_number(text, decimal_comma=decimal_comma), field)
    return _parse_whole(text, field, decimal_comma=decimal_comma)


def parse_row(
    cells: list[str], row_number: int, mapping: ColumnMapping, *, decimal_comma: bool = False
) -> tuple[CustomerRow | None, list[RowError]]:
    """Validate one data row; return the customer or every problem found in it."""
    if len(cells) != len(mapping.headers):
        shown = ",".join(cells)
        return None, [
            RowError(
                row_number,
                "",
                shown,
                f"has {len(cells)} values where the header has {len(mapping.headers)} columns",
            )
        ]
    values: dict = {"purchase_frequency": None, "sex": "unknown"}
    errors = []
    for field, position in mapping.positions.items():
        try:
            values[field] = _parse_field(field, cells[position], decimal_comma=decimal_comma)
        except _Invalid as problem:
            errors.append(
                RowError(
                    row_number,
                    mapping.headers[position],
                    cells[position],
                    f"{field.replace('_', ' ')} {problem.reason}",
                )
            )
    if errors:
        return None, errors
    return CustomerRow(**values), []
