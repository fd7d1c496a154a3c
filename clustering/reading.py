"""Read every customer's features into arrays, fast and without model instances.

A retrain needs the run's features for the model, every other numeric feature for the
segment statistics, and the categorical attributes for the segments' mixes. On
PostgreSQL the rows stream out with COPY as CSV and are parsed in blocks by pandas' C
parser (a million customers with twenty attributes in a few seconds); elsewhere they
are fetched in chunks. Categories become integer codes, so a mix is one bincount.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.db import connection

from clustering.encoding import MISSING_CATEGORY
from customers.catalogue import KEY_PATTERN, SOURCE_FIELD, SOURCE_PURCHASES, Catalogue
from customers.models import Customer

SEX_CODES = tuple(Customer.Sex.values)
FETCH_ROWS = 50_000
COPY_BLOCK_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Categories:
    """One categorical attribute: a code per customer (-1 = unknown) and the values."""

    codes: np.ndarray
    values: list[str]


@dataclass(frozen=True)
class FeatureMatrix:
    """The customers a run segments, as float64 arrays.

    ``values`` holds every numeric catalogue feature (``value_features``; NaN where
    unknown) for statistics; ``X`` only the run's features, after the missing-value rule.
    """

    customer_pks: np.ndarray
    values: np.ndarray
    value_features: tuple[str, ...]
    X: np.ndarray
    sex: np.ndarray
    excluded: int  # customers left out for a missing feature
    missing_by_feature: dict[str, int]
    imputed: dict[str, float]
    categories: dict[str, Categories] = field(default_factory=dict)
    # A chosen categorical feature's values: its column in X holds the index (the code).
    category_values: dict[str, list[str]] = field(default_factory=dict)


def _attribute_key(key: str) -> str:
    if not KEY_PATTERN.match(key):  # keys are ours, but a query never trusts a string
        raise ValueError(f"not a feature key: {key!r}")
    return key


def feature_sql(key: str, catalogue: Catalogue) -> str:
    """The SQL expression of a numeric feature over ``customers_from(catalogue)``: its
    column, its purchase-history value, or its attribute as a number (a text value in a
    numeric attribute reads as unknown)."""
    feature = catalogue[key]
    if feature.source != SOURCE_FIELD and feature.source != SOURCE_PURCHASES:
        key = _attribute_key(key)
        if connection.vendor == "postgresql":
            return (
                f"CASE WHEN jsonb_typeof(c.attributes->'{key}') = 'number' "
                f"THEN (c.attributes->>'{key}')::double precision END"
            )
        return (
            f"CASE WHEN json_type(c.attributes, '$.{key}') IN ('integer', 'real') "
            f"THEN json_extract(c.attributes, '$.{key}') END"
        )
    return _raw_sql(key, catalogue)


def _raw_sql(key: str, catalogue: Catalogue) -> str:
    """The feature as the database keeps it, for a bulk read that parses numbers itself."""
    feature = catalogue[key]
    if feature.source == SOURCE_FIELD:
        return f"c.{key}"
    if feature.source == SOURCE_PURCHASES:
        return f"r.{_attribute_key(feature.column)}"
    key = _attribute_key(key)
    if connection.vendor == "postgresql":
        return f"c.attributes->>'{key}'"
    return f"json_extract(c.attributes, '$.{key}')"


def customers_from(catalogue: Catalogue) -> str:
    """The customers table as ``c``, with their RFM values as ``r`` when the catalogue
    has purchase-history features."""
    table = f"{Customer._meta.db_table} c"
    if not any(f.source == SOURCE_PURCHASES for f in catalogue):
        return table
    from purchases.models import CustomerRfm

    return f"{table} LEFT JOIN {CustomerRfm._meta.db_table} r ON r.customer_id = c.id"


def feature_coverage(*, catalogue: Catalogue) -> tuple[int, dict[str, int]]:
    """(customers, {numeric feature: customers who have it}) in one pass."""
    keys = [f.key for f in catalogue.clusterable()]
    counts = ", ".join(f"COUNT({feature_sql(key, catalogue)})" for key in keys)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), {counts} FROM {customers_from(catalogue)}")
        total, *known = cursor.fetchone()
    return total, dict(zip(keys, known, strict=True))


# --------------------------------------------------------------------------- reading


@dataclass
class _Columns:
    """What a read collects, block by block."""

    numeric: list[np.ndarray] = field(default_factory=list)  # id, features..., sex code
    categories: dict[str, list[np.ndarray]] = field(default_factory=dict)
    dictionaries: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, frame: pd.DataFrame, n_numeric: int, category_keys: list[str]) -> None:
        self.numeric.append(frame.iloc[:, :n_numeric].to_numpy(dtype=np.float64))
        for offset, key in enumerate(category_keys):
            column = frame.iloc[:, n_numeric + offset]
            self.categories.setdefault(key, []).append(self._codes(key, column))

    def _codes(self, key: str, column: pd.Series) -> np.ndarray:
        """Codes of one block in the attribute's dictionary, shared by all blocks."""
        local, uniques = pd.factorize(column, use_na_sentinel=True)
        dictionary = self.dictionaries.setdefault(key, {})
        mapping = np.array(
            [dictionary.setdefault(str(v), len(dictionary)) for v in uniques] + [-1],
            dtype=np.int32,
        )
        return mapping[local]  # -1 (unknown) maps through the last entry

    def result(self, width: int) -> tuple[np.ndarray, dict[str, Categories]]:
        data = np.concatenate(self.numeric) if self.numeric else np.empty((0, width))
        categories = {
            key: Categories(np.concatenate(parts), list(self.dictionaries[key]))
            for key, parts in self.categories.items()
        }
        return data, categories


def _frames_postgresql(sql: str, names: list[str], n_numeric: int) -> Iterator[pd.DataFrame]:
    """The query's rows as DataFrames of about COPY_BLOCK_BYTES each, via COPY ... CSV."""
    blocks: list[bytes] = []
    size = 0
    with connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV") as copy:
        for block in copy:
            blocks.append(bytes(block))
            size += len(block)
            if size >= COPY_BLOCK_BYTES:
                text = b"".join(blocks)
                cut = text.rfind(b"\n") + 1
                yield _parse_csv(text[:cut], names, n_numeric)
                blocks, size = [text[cut:]], len(text) - cut
    if size:
        yield _parse_csv(b"".join(blocks), names, n_numeric)


def _parse_csv(text: bytes, names: list[str], n_numeric: int) -> pd.DataFrame:
    """One block of COPY's CSV: numbers as float64 (the same doubles the database holds),
    categories as text; a number column holding text (a raw database edit) reads as
    unknown where it is not a number."""
    options = {"header": None, "names": names, "keep_default_na": False, "na_values": [""]}
    numbers = {name: "float64" for name in names[:n_numeric]}
    texts = {name: str for name in names[n_numeric:]}
    try:
        return pd.read_csv(io.BytesIO(text), dtype={**numbers, **texts}, **options)
    except ValueError:
        frame = pd.read_csv(io.BytesIO(text), dtype=str, **options)
        frame[names[:n_numeric]] = frame[names[:n_numeric]].apply(pd.to_numeric, errors="coerce")
        return frame


def _frames_fetched(sql: str, names: list[str], n_numeric: int) -> Iterator[pd.DataFrame]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(FETCH_ROWS):
            frame = pd.DataFrame(rows, columns=names)
            numbers = frame.iloc[:, :n_numeric].apply(pd.to_numeric, errors="coerce")
            yield pd.concat([numbers, frame.iloc[:, n_numeric:]], axis=1)


def _read(catalogue: Catalogue) -> tuple[np.ndarray, tuple[str, ...], dict[str, Categories]]:
    """(rows: id, numeric features..., sex code; the features; the categorical attributes)."""
    value_features = tuple(f.key for f in catalogue.numeric())
    category_keys = [f.key for f in catalogue.categorical() if f.source != SOURCE_FIELD]
    sex_case = " ".join(f"WHEN '{code}' THEN {i}" for i, code in enumerate(SEX_CODES))
    selected = [
        "c.id",
        *(_raw_sql(key, catalogue) for key in value_features),
        f"CASE c.sex {sex_case} ELSE 3 END",
        *(_raw_sql(key, catalogue) for key in category_keys),
    ]
    sql = f"SELECT {', '.join(selected)} FROM {customers_from(catalogue)} ORDER BY c.id"
    n_numeric = len(value_features) + 2
    names = [f"c{i}" for i in range(len(selected))]
    columns = _Columns()
    if connection.vendor == "postgresql":
        frames = _frames_postgresql(sql, names, n_numeric)
    else:
        frames = _frames_fetched(sql, names, n_numeric)
    for frame in frames:
        columns.add(frame, n_numeric, category_keys)
    data, categories = columns.result(n_numeric)
    return data, value_features, categories


def customers_feature_matrix(
    *, features: list[str], catalogue: Catalogue, missing: str = "exclude"
) -> FeatureMatrix:
    """Every customer's features as arrays (see the module docstring).

    ``missing``: "exclude" leaves out customers without a chosen feature; "median" gives
    them the median of the customers who have it."""
    data, value_features, categories = _read(catalogue)
    values = data[:, 1 : 1 + len(value_features)]
    category_values = {
        f: _sorted_values(categories, f) for f in features if f not in value_features
    }
    chosen = (
        np.column_stack(
            [
                _category_column(categories[f], category_values[f])
                if f in category_values
                else values[:, value_features.index(f)]
                for f in features
            ]
        )
        if features
        else np.empty((len(data), 0))
    )
    unknown = np.isnan(chosen)
    missing_by_feature = {f: int(n) for f, n in zip(features, unknown.sum(axis=0), strict=True)}
    imputed: dict[str, float] = {}
    if missing == "median":
        for column, feature in enumerate(features):
            known = chosen[~unknown[:, column], column]
            if feature in category_values:
                # A median of categories means nothing: the missing are a category.
                if unknown[:, column].any():
                    category_values[feature].append(MISSING_CATEGORY)
                    chosen[unknown[:, column], column] = len(category_values[feature]) - 1
                continue
            if unknown[:, column].any() and len(known):
                imputed[feature] = float(np.median(known))
                chosen[unknown[:, column], column] = imputed[feature]
        keep = ~np.isnan(chosen).any(axis=1)
    else:
        keep = ~unknown.any(axis=1)
    return FeatureMatrix(
        customer_pks=data[keep, 0].astype(np.int64),
        values=values[keep],
        value_features=value_features,
        X=np.ascontiguousarray(chosen[keep]),
        sex=data[keep, -1].astype(np.int8),
        excluded=int((~keep).sum()),
        missing_by_feature=missing_by_feature,
        imputed=imputed,
        categories={key: Categories(c.codes[keep], c.values) for key, c in categories.items()},
        category_values=category_values,
    )


def _sorted_values(categories: dict[str, Categories], key: str) -> list[str]:
    if key not in categories:
        raise ValueError(f"{key} is not a categorical attribute these customers have")
    return sorted(categories[key].values)


def _category_column(category: Categories, values: list[str]) -> np.ndarray:
    """The codes of a categorical feature in ``values``' order, NaN where unknown."""
    order = np.array([values.index(v) for v in category.values] + [np.nan])
    return order[category.codes]  # code -1 (unknown) reads the last entry, NaN
