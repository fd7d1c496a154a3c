"""The customer file format: which column feeds which feature, value parsing, row checks.

Pure Python (no database): the import command, the upload page and the tests share one
definition of what a valid row is. What the features are comes from the feature
catalogue passed in (customers.catalogue), never from a list here.

A file's columns map to targets: ``customer_id``, a catalogue feature, or a new
attribute the file brings (its kind detected from the values). Derived columns add
targets computed from other columns (customers.expressions). Only the ID is needed,
and even that can be made from the row number or from columns the user names.
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from customers.catalogue import (
    CATEGORICAL,
    CATEGORY_MAX_VALUES,
    CUSTOMER_ID_MAX_LENGTH,
    ID_ALIASES,
    KEY_PATTERN,
    NUMERIC,
    SEX_ALIASES,
    SOURCE_ATTRIBUTE,
    SOURCE_DERIVED,
    SOURCE_PURCHASES,
    TEXT_MAX_LENGTH,
    Catalogue,
    Feature,
    attribute_key,
    normalise_header,
)
from customers.expressions import Derivation

ID = "customer_id"
IGNORE = ""
# The "delimiter" of a file whose columns are separated by runs of spaces or tabs.
WHITESPACE = "whitespace"
# The column step's choice "keep as a new attribute of this kind": "new:numeric".
NEW_ATTRIBUTE = "new:"
# Cells that mean "unknown" in the files people have, whatever the column.
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a"})
# A plain decimal number: ASCII digits (not Arabic-Indic or full-width ones), one optional
# point; no exponent, no underscores.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_CURRENCY = "$€£¥"
# Characters no ID or category may hold: control characters, invisible format characters
# (bidirectional overrides, marks and isolates, zero-width spaces) and line separators,
# which make a value print as something else or break the line it is shown on.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


# Text starting with one of these would run as a formula in a spreadsheet: the site's CSV
# writer (customers.services.SafeCsvWriter) puts an apostrophe before it, and the importer
# takes that apostrophe off again, so an exported file imports back unchanged.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def unguard(text: str) -> str:
    """'=SUM(A1) as the site's writer wrote =SUM(A1): the value without the apostrophe."""
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_STARTS else text


class CsvFormatError(ValueError):
    """The file as a whole cannot be read as customers (one clear message, no row report)."""


class UnclearColumns(CsvFormatError):
    """A column is named for two targets: the upload page then asks which column is which."""

    def __init__(
        self,
        message: str,
        *,
        headers: Iterable[str],
        ambiguous: Mapping[str, Sequence[str]] | None = None,
        targets: Iterable[str] = (),
    ):
        super().__init__(message)
        self.headers = tuple(headers)
        # target -> the columns named for it
        self.ambiguous = {target: tuple(names) for target, names in (ambiguous or {}).items()}
        # Every column's target by position, the first of two columns keeping a target.
        self.targets = tuple(targets)


def parse_mapping_option(items: Iterable[str], catalogue: Catalogue) -> dict[str, str]:
    """Turn ``--map "Source column=field"`` options into {source header: target}."""
    mapping = {}
    valid = {ID, *catalogue.keys}
    for item in items:
        source, sep, target = item.partition("=")
        target = target.strip()
        if not sep or not source.strip() or target not in valid:
            raise CsvFormatError(
                f'--map {item!r} must look like "Source column=field" with field one of '
                f"{', '.join(sorted(valid))}"
            )
        mapping[source.strip()] = target
    return mapping


# --------------------------------------------------------------------------- values


class Invalid(Exception):
    """One cell is not a valid value; ``reason`` completes "<field> ..."."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING_MARKERS


def parse_number(text: str, *, decimal_comma: bool) -> float:
    """A plain decimal number ("1234.5", "1 234,5" with a decimal comma, "$52,000" is not)."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if cleaned[:1] in _CURRENCY:
        cleaned = cleaned[1:]
    if decimal_comma and cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    if not _NUMBER.fullmatch(cleaned):
        raise Invalid("is not a number")
    value = float(cleaned)
    if not math.isfinite(value):
        raise Invalid("is not a finite number")
    return value


def has_hidden_characters(text: str) -> bool:
    """Control, invisible format (text-direction) or line-separator characters."""
    return any(unicodedata.category(c) in _HIDDEN_CATEGORIES for c in text)


def parse_customer_id(text: str) -> str:
    """An ID as every face takes it (file, admin, API); Invalid says what is wrong."""
    text = unguard(text.strip())
    if not text:
        raise Invalid("is empty; every customer needs an ID")
    if len(text) > CUSTOMER_ID_MAX_LENGTH:
        raise Invalid(f"is longer than {CUSTOMER_ID_MAX_LENGTH} characters")
    if has_hidden_characters(text):
        raise Invalid("contains a control or text-direction character")
    return text


STRAY_QUOTE = 'contains a stray double quote (") outside quotes; quote the whole value'


def stray_quote_fields(raw: str, delimiter: str) -> frozenset[int]:
    """Positions of the fields of one raw CSV record with a quote in an unquoted value
    (X"7). The csv module reads it as part of the value; in an ID it is a broken file, not
    a character of the ID (a quoted "X""7" is fine). Whitespace-separated files have no
    quoting, so every quote there is stray."""
    stray: set[int] = set()
    field, at_start, quoted, i = 0, True, False, 0
    while i < len(raw):
        character = raw[i]
        if quoted:
            if character == '"':
                if raw[i + 1 : i + 2] == '"':
                    i += 2
                    continue
                quoted = False
        elif character == '"' and at_start and delimiter != WHITESPACE:
            quoted = True
        elif character == '"':
            stray.add(field)
        elif character == delimiter or (delimiter == WHITESPACE and character in " \t"):
            if delimiter != WHITESPACE or not at_start:
                field += 1
            at_start = True
            i += 1
            continue
        at_start = False
        i += 1
    return frozenset(stray)


def parse_value(feature: Feature, text: str, *, decimal_comma: bool):
    """The value of one cell for ``feature``; None for a blank (missing, never zero)."""
    if feature.key == "sex":
        sex = SEX_ALIASES.get(text.strip().lower())
        if sex is None:
            raise Invalid("must be female, male, other or unknown (or empty)")
        return sex
    if is_missing(text):
        return None
    if feature.kind == CATEGORICAL:
        return parse_category(text)
    return check_number(feature, parse_number(text, decimal_comma=decimal_comma))


def check_number(feature: Feature, value: float) -> float | int:
    problem = feature.range_problem(value)
    if problem:
        raise Invalid(problem)
    return int(value) if feature.whole else value


def parse_category(text: str) -> str:
    text = unguard(text.strip())
    if len(text) > TEXT_MAX_LENGTH:
        raise Invalid(f"is longer than {TEXT_MAX_LENGTH} characters")
    if has_hidden_characters(text):
        raise Invalid("contains a control or text-direction character")
    return text


# --------------------------------------------------------------------------- profiles


@dataclass
class ColumnProfile:
    """What the first rows of a file say about one column (kind, examples, median)."""

    header: str
    values: int = 0
    blanks: int = 0
    numbers: list[float] = field(default_factory=list)
    not_numbers: int = 0
    distinct: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return NUMERIC if self.numbers and not self.not_numbers else CATEGORICAL

    @property
    def whole(self) -> bool:
        return all(float(v).is_integer() for v in self.numbers)

    @property
    def many_values(self) -> bool:
        """Free text (names, e-mails): too many distinct values to count as categories."""
        return self.kind == CATEGORICAL and len(self.distinct) > CATEGORY_MAX_VALUES

    @property
    def median(self) -> float | None:
        return statistics.median(self.numbers) if self.numbers else None


def profile_columns(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, decimal_comma: bool
) -> list[ColumnProfile]:
    """Profiles of every column over ``rows`` (the caller bounds how many)."""
    profiles = [ColumnProfile(header) for header in headers]
    for cells in rows:
        for profile, cell in zip(profiles, cells, strict=False):
            _profile_cell(profile, cell, decimal_comma)
    return profiles


def _profile_cell(profile: ColumnProfile, cell: str, decimal_comma: bool) -> None:
    profile.values += 1
    if is_missing(cell):
        profile.blanks += 1
        return
    if len(profile.examples) < 3 and cell.strip() not in profile.examples:
        profile.examples.append(cell.strip())
    if len(profile.distinct) <= CATEGORY_MAX_VALUES:
        profile.distinct.add(cell.strip())
    try:
        profile.numbers.append(parse_number(cell, decimal_comma=decimal_comma))
    except Invalid:
        profile.not_numbers += 1


def new_attribute(
    header: str, profile: ColumnProfile | None, taken: set[str], *, kind: str | None = None
) -> Feature:
    """The catalogue entry a file's column becomes when it is kept as an attribute."""
    key = attribute_key(header)
    base, number = key, 2
    while key in taken or not KEY_PATTERN.match(key):
        key = f"{base[:36]}_{number}"
        number += 1
    kind = kind or (profile.kind if profile else NUMERIC)
    whole = bool(profile and kind == NUMERIC and profile.numbers and profile.whole)
    return Feature(
        key=key,
        label=header.strip()[:80] or key,
        short_label=key.replace("_", " "),
        kind=kind,
        whole=whole,
        source=SOURCE_ATTRIBUTE,
        help=f"From the column {header!r}",
        log_allowed=kind == NUMERIC,
    )


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class DerivedColumn:
    """A derivation resolved against a file: the target it feeds and the columns it reads."""

    derivation: Derivation
    target: str  # a catalogue key or a new attribute's key
    positions: dict[str, int]  # column name in the expression -> position


@dataclass(frozen=True)
class ColumnMapping:
    """Which position of the file feeds which target, and what the file has that we ignore."""

    headers: tuple[str, ...]
    positions: dict[str, int]  # customer_id / feature key -> position
    features: dict[str, Feature]  # every target's definition (catalogue or new attribute)
    ignored: tuple[str, ...] = ()
    derived: tuple[DerivedColumn, ...] = ()
    id_positions: tuple[int, ...] = ()  # no ID column: the ID is made from these columns
    id_prefix: str = "row"  # ... or from this and the row number
    new_keys: tuple[str, ...] = ()  # targets that are not in the catalogue yet

    def header_of(self, target: str) -> str:
        if target in self.positions:
            return self.headers[self.positions[target]]
        for derived in self.derived:
            if derived.target == target:
                return f"{derived.derivation.name}={derived.derivation.expression.text}"
        return target

    @property
    def targets(self) -> tuple[str, ...]:
        """Every feature the file gives a value for (columns, then derived ones)."""
        direct = [t for t in self.positions if t != ID]
        return (*direct, *(d.target for d in self.derived if d.target not in direct))

    @property
    def new_attributes(self) -> tuple[Feature, ...]:
        """The attributes this import adds to the catalogue."""
        return tuple(self.features[key] for key in self.new_keys)

    def id_source(self) -> str:
        """How customers of this file are identified, in words for the report."""
        if ID in self.positions:
            return f"the column {self.headers[self.positions[ID]]!r}"
        if self.id_positions:
            names = " + ".join(repr(self.headers[i]) for i in self.id_positions)
            return f"the columns {names} joined with '-'"
        return f"the row number, as {self.id_prefix}-000001, {self.id_prefix}-000002, ..."


@dataclass(frozen=True)
class MappingRequest:
    """What the user said about the columns (the command's options or the column step)."""

    explicit: Mapping[str, str] | Sequence[str] | None = None  # header -> target, or by position
    attributes: str | Sequence[str] = ()  # "all", or headers to keep as attributes
    kinds: Mapping[str, str] = field(default_factory=dict)  # header -> numeric/categorical
    derive: Sequence[Derivation] = ()
    id_columns: Sequence[str] = ()
    id_prefix: str = "row"


DEFAULT_REQUEST = MappingRequest()


def map_columns(
    headers: Sequence[str],
    catalogue: Catalogue,
    request: MappingRequest = DEFAULT_REQUEST,
    profiles: Sequence[ColumnProfile] | None = None,
) -> ColumnMapping:
    """Match a header row to the catalogue; CsvFormatError when the file gives nothing.

    ``request.explicit`` maps a column (its exact header, or its name as normalise_header
    reads it) to a target, or to "" for none; it wins over recognised names. A sequence
    instead gives the target of every column by position (the upload page's choices).
    """
    headers = tuple(headers)
    targets = _column_targets(headers, catalogue, request)
    # Each "new attribute" choice is a target of its own.
    targets = [f"{t}#{i}" if t.startswith(NEW_ATTRIBUTE) else t for i, t in enumerate(targets)]
    positions, duplicates, ignored = _positions(headers, targets)
    if duplicates:
        target, (first, second, *_others) = next(iter(duplicates.items()))
        raise UnclearColumns(
            f"columns {first!r} and {second!r} both map to {target}; choose one (the import "
            'command takes --map "Source column=field")',
            headers=headers,
            ambiguous=duplicates,
            targets=[
                t.split("#")[0] if positions.get(t) == i else IGNORE for i, t in enumerate(targets)
            ],
        )
    _give_way_to_derivations(positions, ignored, headers, request.derive, catalogue)
    feeds_known = _columns_feeding_known_features(headers, request.derive, catalogue)
    features = {key: catalogue[key] for key in positions if key in catalogue}
    # Sets, not lists: every step below is linear in the number of columns.
    named = set(request.attributes) if request.attributes != "all" else set()
    taken = {*catalogue.keys, ID}
    for target in [t for t in positions if t.startswith(NEW_ATTRIBUTE)]:
        index = positions.pop(target)
        kind = target[len(NEW_ATTRIBUTE) :].split("#")[0]
        profile = profiles[index] if profiles else None
        feature = new_attribute(headers[index], profile, taken, kind=kind)
        taken.add(feature.key)
        features[feature.key] = feature
        positions[feature.key] = index
    mapped = set(positions.values())
    kept: Counter[str] = Counter()
    for index, header in enumerate(headers):
        if index in feeds_known and header not in named:
            continue  # Year_Birth for age=2014-[Year_Birth]: the derived value is enough
        if index not in mapped and _keep_as_attribute(header, index, request, named):
            profile = profiles[index] if profiles else None
            if profile is not None and profile.many_values and request.attributes == "all":
                continue  # free text: only kept when named (it stays in ignored)
            feature = new_attribute(header, profile, taken, kind=request.kinds.get(header))
            taken.add(feature.key)
            features[feature.key] = feature
            positions[feature.key] = index
            kept[header] += 1
    ignored = _without(ignored, kept)
    derived = _resolve_derived(headers, request.derive, catalogue, features, taken)
    id_positions = _id_positions(headers, request.id_columns) if ID not in positions else ()
    if len(positions) - (ID in positions) == 0 and not derived:
        raise CsvFormatError(
            "no column of the file is a customer feature "
            f"({', '.join(repr(h) for h in headers[:8])}); name the columns to keep "
            "(the import command takes --attributes all, --map and --derive)"
        )
    return ColumnMapping(
        headers=headers,
        positions=positions,
        features=features,
        ignored=tuple(ignored),
        derived=derived,
        id_positions=id_positions,
        id_prefix=request.id_prefix,
        new_keys=tuple(key for key in features if key not in catalogue),
    )


def _column_targets(
    headers: tuple[str, ...], catalogue: Catalogue, request: MappingRequest
) -> list[str]:
    explicit = request.explicit
    if isinstance(explicit, Sequence) and not isinstance(explicit, str):
        if len(explicit) != len(headers):
            raise CsvFormatError("the file's columns do not match the column choices")
        valid = {
            IGNORE,
            ID,
            *catalogue.keys,
            f"{NEW_ATTRIBUTE}{NUMERIC}",
            f"{NEW_ATTRIBUTE}{CATEGORICAL}",
        }
        unknown = [str(t) for t in explicit if str(t) not in valid]
        if unknown:
            raise CsvFormatError(f"unknown column choice(s): {', '.join(unknown[:3])}")
        return [str(target) for target in explicit]
    exact = dict(explicit or {})
    loose = {normalise_header(k): v for k, v in exact.items()}
    chosen = set(exact.values())
    targets = []
    for header in headers:
        key = normalise_header(header)
        if header in exact or key in loose:
            targets.append(exact[header] if header in exact else loose[key])
            continue
        target = _recognised(header, catalogue)
        targets.append(IGNORE if target in chosen else target)
    return targets


def _recognised(header: str, catalogue: Catalogue) -> str:
    if normalise_header(header) in ID_ALIASES:
        return ID
    feature = catalogue.by_alias(header)
    if feature is None or feature.source == SOURCE_PURCHASES:
        return IGNORE  # RFM values come from the purchase history, never from a file
    return feature.key


def _positions(headers, targets) -> tuple[dict[str, int], dict[str, list[str]], list[str]]:
    positions: dict[str, int] = {}
    duplicates: dict[str, list[str]] = {}
    ignored = []
    for index, (header, target) in enumerate(zip(headers, targets, strict=True)):
        if not target:
            ignored.append(header)
        elif target in positions:
            duplicates.setdefault(target, [headers[positions[target]]]).append(header)
        else:
            positions[target] = index
    return positions, duplicates, ignored


def _give_way_to_derivations(positions, ignored, headers, derivations, catalogue) -> None:
    """A derivation for a feature replaces the column recognised for it by name: with
    --derive "annual_income=[Income]/1000" the Income column feeds the expression only."""
    for derivation in derivations:
        existing = catalogue.get(derivation.name) or catalogue.by_alias(derivation.name)
        if existing is not None and existing.key in positions:
            ignored.append(headers[positions.pop(existing.key)])


def _columns_feeding_known_features(headers, derivations, catalogue: Catalogue) -> set[int]:
    """Columns read by a derivation of a catalogue feature ([Income] in annual_income=...):
    kept as attributes only when named, or the same fact would count twice."""
    positions = set()
    for derivation in derivations:
        if catalogue.get(derivation.name) or catalogue.by_alias(derivation.name):
            for name in derivation.expression.columns:
                positions.add(_column_position(tuple(headers), name))
    return positions


def _keep_as_attribute(header: str, index: int, request: MappingRequest, named: set[str]) -> bool:
    if isinstance(request.explicit, Sequence) and not isinstance(request.explicit, str):
        return False  # the column step says every column's target itself
    if request.attributes == "all":
        return True
    return header in named or f"#{index + 1}" in named


def _without(headers: list[str], kept: Counter[str]) -> list[str]:
    """``headers`` less one occurrence (the first) of each kept header, in one pass."""
    remaining = []
    for header in headers:
        if kept[header] > 0:
            kept[header] -= 1
        else:
            remaining.append(header)
    return remaining


def _resolve_derived(
    headers: tuple[str, ...],
    derivations: Sequence[Derivation],
    catalogue: Catalogue,
    features: dict[str, Feature],
    taken: set[str],
) -> tuple[DerivedColumn, ...]:
    resolved = []
    for derivation in derivations:
        positions = {
            name: _column_position(headers, name) for name in derivation.expression.columns
        }
        target = _derived_target(derivation, catalogue, features, taken)
        if target in {d.target for d in resolved}:
            raise CsvFormatError(f"two derived columns are both named {derivation.name!r}")
        resolved.append(DerivedColumn(derivation, target, positions))
    return tuple(resolved)


def _column_position(headers: tuple[str, ...], name: str) -> int:
    if name in headers:
        return headers.index(name)
    loose = [i for i, h in enumerate(headers) if normalise_header(h) == normalise_header(name)]
    if len(loose) == 1:
        return loose[0]
    raise CsvFormatError(
        f"a derived column uses [{name}], but the file has no column of that name "
        f"(its columns: {', '.join(repr(h) for h in headers[:20])})"
    )


def _derived_target(
    derivation: Derivation, catalogue: Catalogue, features: dict[str, Feature], taken: set[str]
) -> str:
    """A derivation feeds the catalogue feature of its name, or a new numeric attribute."""
    existing = catalogue.get(derivation.name) or catalogue.by_alias(derivation.name)
    if existing is not None:
        if not existing.is_numeric:
            raise CsvFormatError(f"{existing.label} is not a number, so it cannot be derived")
        features[existing.key] = existing
        return existing.key
    if derivation.name == ID:
        raise CsvFormatError("the customer ID cannot be derived; use --id-columns")
    feature = new_attribute(derivation.name, None, taken, kind=NUMERIC)
    feature = replace(
        feature,
        label=feature.short_label.capitalize(),  # total_spend -> "Total spend"
        source=SOURCE_DERIVED,
        expression=derivation.expression.text,
        help=f"Derived on import: {derivation.expression.text}",
    )
    taken.add(feature.key)
    features[feature.key] = feature
    return feature.key


def _id_positions(headers: tuple[str, ...], names: Sequence[str]) -> tuple[int, ...]:
    return tuple(_column_position(headers, name) for name in names)


# --------------------------------------------------------------------------- rows


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
    values: dict[str, object]  # feature key -> value (None = blank), only what the file has


def parse_row(
    cells: Sequence[str],
    row_number: int,
    mapping: ColumnMapping,
    *,
    decimal_comma: bool = False,
    ordinal: int = 0,
    stray_quotes: frozenset[int] = frozenset(),
) -> tuple[CustomerRow | None, list[RowError]]:
    """Validate one data row; return the customer or every problem found in it.

    ``row_number`` is the line shown in reports; ``ordinal`` the data row's number,
    which makes the ID of a file without an ID column; ``stray_quotes`` the positions of
    values with a quote outside quotes (stray_quote_fields)."""
    if len(cells) != len(mapping.headers):
        return None, [
            RowError(
                row_number,
                "",
                ",".join(cells[:8])[:200],  # enough to find the row; a wide row stays small
                f"has {len(cells)} values where the header has {len(mapping.headers)} columns",
            )
        ]
    errors: list[RowError] = []
    values: dict[str, object] = {}
    customer_id = _row_id(cells, row_number, ordinal, mapping, errors, stray_quotes)
    for target, position in mapping.positions.items():
        if target == ID:
            continue
        feature = mapping.features[target]
        try:
            values[target] = parse_value(feature, cells[position], decimal_comma=decimal_comma)
        except Invalid as problem:
            errors.append(
                _error(row_number, mapping.headers[position], cells[position], feature, problem)
            )
    for derived in mapping.derived:
        values[derived.target] = _derive(derived, cells, row_number, mapping, decimal_comma, errors)
    if errors:
        return None, errors
    return CustomerRow(customer_id, values), []


def _error(row: int, column: str, value: str, feature: Feature, problem: Invalid) -> RowError:
    return RowError(row, column, value, f"{feature.label.lower()} {problem.reason}")


def _row_id(cells, row_number, ordinal, mapping: ColumnMapping, errors, stray_quotes) -> str:
    if ID in mapping.positions:
        positions = (mapping.positions[ID],)
        text = cells[positions[0]]
    elif mapping.id_positions:
        positions = mapping.id_positions
        text = "-".join(cells[i].strip() for i in mapping.id_positions)
    else:
        return f"{mapping.id_prefix}-{ordinal:06d}"
    position = next((p for p in positions if p in stray_quotes), positions[0])
    try:
        if position in stray_quotes:
            raise Invalid(STRAY_QUOTE)
        return parse_customer_id(text)
    except Invalid as problem:
        errors.append(
            RowError(row_number, mapping.headers[position], text, f"customer ID {problem.reason}")
        )
        return ""


def _derive(derived: DerivedColumn, cells, row_number, mapping, decimal_comma, errors):
    inputs: dict[str, float | None] = {}
    for name, position in derived.positions.items():
        text = cells[position]
        if is_missing(text):
            inputs[name] = None
            continue
        try:
            inputs[name] = parse_number(text, decimal_comma=decimal_comma)
        except Invalid as problem:
            reason = f"[{name}], used by {derived.derivation.name!r}, {problem.reason}"
            errors.append(RowError(row_number, mapping.headers[position], text, reason))
            return None
    value = derived.derivation.expression.evaluate(inputs)
    if value is None:
        return None  # a blank input (or a division by zero) leaves the value missing
    feature = mapping.features[derived.target]
    try:
        return check_number(feature, value)
    except Invalid as problem:
        column = f"{derived.derivation.name}={derived.derivation.expression.text}"
        errors.append(
            RowError(row_number, column, f"{value:g}", f"{feature.label.lower()} {problem.reason}")
        )
        return None


# --------------------------------------------------------------------------- unit check


@dataclass(frozen=True)
class UnitQuestion:
    """A feature whose values look like another unit; the import waits for a yes."""

    feature: str
    column: str
    median: float
    question: str
    suggestion: str  # a --derive option that would convert it

    def __str__(self) -> str:
        return f"{self.question} If so, derive it instead: --derive {self.suggestion!r}"


def unit_questions(
    mapping: ColumnMapping, profiles: Sequence[ColumnProfile], *, this_year: int
) -> list[UnitQuestion]:
    """Features fed straight from a column whose median suggests the wrong unit."""
    questions = []
    for target, position in mapping.positions.items():
        feature = mapping.features.get(target)
        check = feature.unit_check if feature else None
        median = profiles[position].median if position < len(profiles) else None
        if check is None or median is None or median <= check.median_above:
            continue
        facts = {"column": mapping.headers[position], "median": f"{median:,.0f}", "year": this_year}
        questions.append(
            UnitQuestion(
                target,
                mapping.headers[position],
                median,
                check.question % facts,
                check.suggestion % facts,
            )
        )
    return questions
