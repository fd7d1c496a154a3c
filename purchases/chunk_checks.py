"""Order-log rows checked a chunk at a time: the import's checks on whole columns.

Pure Python and numpy (no database). Checking every cell of ten million rows one at a
time was most of the import's time, so a chunk's columns are checked at once, and only
what the fast checks can vouch for passes them: canonical dates (20240305, 2024-03-05,
2024-03-05 12:30...), plain numbers (-12.50, 12,50 with a decimal comma), printable IDs.
Every other row goes to the row parser (transaction_format.parse_purchase), which keeps
the last word on values and on the wording of each row error. A fast check may therefore
be narrower than the parser, never wider: it accepts nothing the parser would refuse and
reads nothing differently.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from customers.catalogue import CUSTOMER_ID_MAX_LENGTH, TEXT_MAX_LENGTH
from customers.csv_format import MISSING_MARKERS, RowError
from purchases.dates import DateFormat
from purchases.transaction_format import (
    MAX_QUANTITY,
    ORDER_ID_MAX_LENGTH,
    PurchaseRow,
    TransactionMapping,
    parse_purchase,
)

# Longer numbers (a 40-digit amount is valid) are left to the row parser.
PLAIN_NUMBER_CHARS = 30
_ZERO, _NINE, _POINT, _COMMA, _PLUS, _MINUS = map(ord, "09.,+-")
# An apostrophe may guard a value against spreadsheets ('=A1): the row parser takes it off.
_GUARDED = operator.methodcaller("startswith", "'")


@dataclass
class PurchaseColumns:
    """The valid purchases of a chunk, a list per field, in file order."""

    customer_id: list[str] = field(default_factory=list)
    date: list[str] = field(default_factory=list)  # yyyy-mm-dd
    time: list[str | None] = field(default_factory=list)  # hh:mm:ss
    amount: list[float] = field(default_factory=list)
    quantity: list[int | None] = field(default_factory=list)
    order_id: list[str] = field(default_factory=list)
    product: list[str] = field(default_factory=list)

    FIELDS = ("customer_id", "date", "time", "amount", "quantity", "order_id", "product")

    def __len__(self) -> int:
        return len(self.customer_id)

    def rows(self) -> Iterator[tuple]:
        return zip(*(getattr(self, name) for name in self.FIELDS))

    @cached_property
    def copy_lines(self) -> list[str]:
        """Each row but its customer as PostgreSQL's COPY reads it (text format: a tab
        between values, \\N for none). The checks let no tab, line break or other control
        character into a value, so only a backslash needs escaping."""
        columns = (
            self.date,
            _or_null(self.time),
            map(repr, self.amount),
            _or_null(self.quantity),
            _escaped(self.order_id),
            _escaped(self.product),
        )
        return list(map("\t".join, zip(*columns)))


def _escaped(texts: list[str]) -> list[str]:
    if "\\" not in "".join(texts):
        return texts
    return [text.replace("\\", "\\\\") for text in texts]


def _or_null(values: list) -> list[str]:
    return ["\\N" if value is None else str(value) for value in values]


@dataclass
class CheckedChunk:
    purchases: PurchaseColumns
    rows: int  # purchase rows (blank lines aside)
    invalid_rows: int
    errors: list[RowError]  # in row order
    blank_lines: int


def check_chunk(
    records: Sequence[tuple[int, list[str]]],
    mapping: TransactionMapping,
    date_format: DateFormat,
    *,
    decimal_comma: bool,
) -> CheckedChunk:
    """Check a chunk of (line number, cells) records: the fast checks on whole columns,
    the row parser for the rows they leave."""
    lines, rows = zip(*records)
    full = _lengths(rows) == len(mapping.headers)
    fast = np.flatnonzero(full)  # rows of the file's width: the fast checks' part
    purchases = PurchaseColumns()
    if len(fast):
        columns = list(zip(*(rows if full.all() else [rows[i] for i in fast.tolist()])))
        passed = np.ones(len(fast), dtype=bool)
        values = {}
        for name, position in mapping.positions.items():
            ok, read = _CHECKS[name](columns[position], date_format, decimal_comma)
            passed &= ok
            values.update(read)
        purchases = _taken(values, np.flatnonzero(passed))
        fast = fast[passed]
    slow = np.flatnonzero(~np.isin(np.arange(len(rows)), fast, assume_unique=True))
    parsed, errors, invalid, blank = _parse_rows(
        slow, lines, rows, mapping, date_format, decimal_comma
    )
    if parsed:
        purchases = _merged(purchases, fast, parsed)
    return CheckedChunk(purchases, len(rows) - blank, invalid, errors, blank)


def _lengths(values: Sequence) -> np.ndarray:
    return np.fromiter(map(len, values), dtype=np.int64, count=len(values))


def _parse_rows(slow, lines, rows, mapping, date_format, decimal_comma):
    """The row parser on the rows the fast checks left: blank lines, rows of another
    width, and rows with a value the fast checks cannot vouch for."""
    parsed: list[tuple[int, PurchaseRow]] = []
    errors: list[RowError] = []
    invalid = blank = 0
    for index in slow.tolist():
        cells = rows[index]
        if not any(cell.strip() for cell in cells):
            blank += 1
            continue
        row, problems = parse_purchase(
            cells, lines[index], mapping, date_format, decimal_comma=decimal_comma
        )
        if problems:
            invalid += 1
            errors.extend(problems)
        else:
            parsed.append((index, row))
    return parsed, errors, invalid, blank


def _taken(values: dict, keep: np.ndarray) -> PurchaseColumns:
    """The fast-checked values of the rows at ``keep``; defaults for fields the file lacks."""
    count = len(keep)
    everything = count == len(next(iter(values.values())))
    picked = {
        name: column if everything else np.asarray(column, dtype=object)[keep].tolist()
        for name, column in values.items()
    }
    defaults = {"time": None, "quantity": None, "order_id": "", "product": ""}
    for name, default in defaults.items():
        picked.setdefault(name, [default] * count)
    return PurchaseColumns(**picked)


def _merged(
    fast: PurchaseColumns, fast_at: np.ndarray, parsed: list[tuple[int, PurchaseRow]]
) -> PurchaseColumns:
    """The fast-checked rows and the parsed ones together, back in file order."""
    order = np.argsort(np.concatenate([fast_at, [index for index, _ in parsed]]), kind="stable")
    merged = PurchaseColumns()
    for name in PurchaseColumns.FIELDS:
        column = getattr(fast, name) + [_stored(name, getattr(row, name)) for _, row in parsed]
        setattr(merged, name, np.asarray(column, dtype=object)[order].tolist())
    return merged


def _stored(name: str, value):
    """A parsed value as the fast checks give it (dates and times as ISO text)."""
    if name in ("date", "time") and value is not None:
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- fields


def _customer_ids(cells, _date_format, _decimal_comma):
    ids = list(map(str.strip, cells))
    lengths = _lengths(ids)
    return (lengths > 0) & _plain_text(ids, lengths, CUSTOMER_ID_MAX_LENGTH), {"customer_id": ids}


def _texts(name: str, limit: int) -> Callable:
    """Order IDs and products: optional (a missing marker is no value), printable."""

    def check(cells, _date_format, _decimal_comma):
        texts = list(map(str.strip, cells))
        missing = _missing(texts)
        ok = missing | _plain_text(texts, _lengths(texts), limit)
        if missing.any():
            texts = ["" if gone else text for text, gone in zip(texts, missing.tolist())]
        return ok, {name: texts}

    return check


def _plain_text(texts: list[str], lengths: np.ndarray, limit: int) -> np.ndarray:
    """Short enough, printable (so without the control, text-direction and separator
    characters the row parser refuses), and without a guarding apostrophe."""
    count = len(texts)
    printable = np.fromiter(map(str.isprintable, texts), dtype=bool, count=count)
    guarded = np.fromiter(map(_GUARDED, texts), dtype=bool, count=count)
    return (lengths <= limit) & printable & ~guarded


def _missing(texts: list[str]) -> np.ndarray:
    found = map(MISSING_MARKERS.__contains__, map(str.lower, texts))
    return np.fromiter(found, dtype=bool, count=len(texts))


def _amounts(cells, _date_format, decimal_comma):
    ok, values = _plain_numbers(cells, decimal_comma)
    return ok, {"amount": values.tolist()}


def _quantities(cells, _date_format, decimal_comma):
    ok, values = _plain_numbers(cells, decimal_comma)
    ok &= (values == np.floor(values)) & (np.abs(values) <= MAX_QUANTITY)
    quantities = np.where(ok, values, 0).astype(np.int64).tolist()
    if not ok.all():
        missing = np.zeros(len(quantities), dtype=bool)
        unread = np.flatnonzero(~ok)
        missing[unread] = _missing([cells[i].strip() for i in unread])
        ok |= missing
        quantities = [None if gone else q for q, gone in zip(quantities, missing.tolist())]
    return ok, {"quantity": quantities}


def _plain_numbers(cells, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which cells are plain decimal numbers (an optional sign, digits, at most one point,
    or one comma and no point with a decimal comma), and their values (0 elsewhere)."""
    texts = list(map(str.strip, cells))
    count = len(texts)
    lengths = _lengths(texts)
    ok = (lengths > 0) & (lengths <= PLAIN_NUMBER_CHARS)
    width = int(lengths[ok].max()) if ok.any() else 1
    codes = _codes(texts, width)
    digit = (codes >= _ZERO) & (codes <= _NINE)
    point = codes == _POINT
    if decimal_comma:
        comma = (codes == _COMMA) & ((codes == _COMMA).sum(axis=1) == 1)[:, None]
        comma &= ~point.any(axis=1)[:, None]
        point |= comma
    sign = np.zeros_like(digit)
    sign[:, 0] = (codes[:, 0] == _PLUS) | (codes[:, 0] == _MINUS)
    padding = codes == 0
    ok &= (digit | point | sign | padding).all(axis=1) & digit.any(axis=1)
    # The text's own length: a NUL inside it (not a number) would read as padding.
    ok &= (point.sum(axis=1) <= 1) & ((~padding).sum(axis=1) == lengths)
    if decimal_comma:
        for index in np.flatnonzero(ok & comma.any(axis=1)).tolist():
            texts[index] = texts[index].replace(",", ".")
    values = np.zeros(count)
    good = np.flatnonzero(ok)
    # float() as the row parser reads them (numpy's own reading is slower, not faster).
    values[good] = np.fromiter(map(float, map(texts.__getitem__, good.tolist())), float, len(good))
    return ok, values


def _codes(texts: list[str], width: int) -> np.ndarray:
    """The texts' characters as a (rows, width) array of code points, 0 after the end;
    longer texts are cut (their length tells the checks)."""
    return np.array(texts, dtype=f"<U{width}").view(np.uint32).reshape(len(texts), width)


# --------------------------------------------------------------------------- dates


def _dates(cells, date_format: DateFormat, _decimal_comma):
    """Dates written exactly as the format's patterns show them, every number at its full
    width (05-03-2024, not 5-3-2024), as ISO days and times."""
    texts = list(map(str.strip, cells))
    count = len(texts)
    lengths = _lengths(texts)
    ok = np.zeros(count, dtype=bool)
    days = np.zeros(count, dtype="<U10")
    times: list[str | None] = [None] * count
    for layout in _layouts(date_format.patterns):
        at = np.flatnonzero(~ok & (lengths == layout.width))
        if not len(at):
            continue
        fits, day, clock = layout.read(_codes([texts[i] for i in at.tolist()], layout.width))
        ok[at[fits]] = True
        days[at[fits]] = day[fits]
        if clock is not None:
            for index, text in zip(at[fits].tolist(), clock[fits].tolist()):
                times[index] = text
    return ok, {"date": days.tolist(), "time": times}


@dataclass(frozen=True)
class _Layout:
    """A strptime pattern with every number at its full width: where each part sits."""

    width: int
    parts: dict[str, int]  # directive letter -> first position
    literals: tuple[tuple[int, int], ...]  # (position, code point)

    def number(self, codes: np.ndarray, letter: str) -> tuple[np.ndarray, np.ndarray]:
        """The part's value and whether all its characters are digits."""
        start = self.parts[letter]
        digits = codes[:, start : start + _WIDTHS[letter]].astype(np.int64) - _ZERO
        is_digit = ((digits >= 0) & (digits <= 9)).all(axis=1)
        value = np.zeros(len(codes), dtype=np.int64)
        for column in range(digits.shape[1]):
            value = value * 10 + digits[:, column]
        return value, is_digit

    def read(self, codes: np.ndarray):
        """Which rows fit and are a real day (and time), their ISO day and, with a time
        in the pattern, their hh:mm:ss."""
        fits = np.ones(len(codes), dtype=bool)
        for position, code in self.literals:
            fits &= codes[:, position] == code
        parts = {}
        for letter in self.parts:
            parts[letter], digits = self.number(codes, letter)
            fits &= digits
        year, month, day = parts["Y"], parts["m"], parts["d"]
        fits &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
        fits &= day <= _days_in_month(year, np.clip(month, 1, 12))
        for letter, top in (("H", 23), ("M", 59), ("S", 59)):
            if letter in parts:
                fits &= parts[letter] <= top
        iso_day = self.rewritten(codes, "Y-m-d")
        clock = None
        if "H" in parts:
            clock = self.rewritten(codes, "H:M:S" if "S" in parts else "H:M:00")
        return fits, iso_day, clock

    def rewritten(self, codes: np.ndarray, shape: str) -> np.ndarray:
        """The parts' own digits in another order: "Y-m-d" gives 2024-03-05."""
        pieces = []
        for char in shape:
            if char in _WIDTHS:
                start = self.parts[char]
                pieces.append(codes[:, start : start + _WIDTHS[char]])
            else:
                pieces.append(np.full((len(codes), 1), ord(char), dtype=np.uint32))
        joined = np.ascontiguousarray(np.hstack(pieces))
        return joined.view(f"<U{joined.shape[1]}").ravel()


_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return _MONTH_DAYS[month - 1] + (leap & (month == 2))


@lru_cache(maxsize=64)
def _layouts(patterns: tuple[str, ...]) -> tuple[_Layout, ...]:
    """Each pattern's layout, in the pattern's order (the row parser tries them so)."""
    layouts = []
    for pattern in patterns:
        parts, literals, position, index = {}, [], 0, 0
        while index < len(pattern):
            if pattern[index] == "%":
                letter = pattern[index + 1]
                parts[letter] = position
                position += _WIDTHS[letter]
                index += 2
            else:
                literals.append((position, ord(pattern[index])))
                position += 1
                index += 1
        layouts.append(_Layout(position, parts, tuple(literals)))
    return tuple(layouts)


_CHECKS: dict[str, Callable] = {
    "customer_id": _customer_ids,
    "date": _dates,
    "amount": _amounts,
    "quantity": _quantities,
    "order_id": _texts("order_id", ORDER_ID_MAX_LENGTH),
    "product": _texts("product", TEXT_MAX_LENGTH),
}
