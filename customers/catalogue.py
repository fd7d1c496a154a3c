"""The feature catalogue: every customer feature, defined once.

A feature is a stored customer field (age, income, ...), an attribute kept from an
imported file (any column of the customer's own data), or an attribute derived on
import from other columns. Each entry says everything the site's faces need: the
import reads its aliases and range, the forms and the API build their fields and
schema from it, the tables show its label and unit, the engine names segments with its
short label. Nothing else lists features by hand.

This module is pure Python (no Django): ``features_all()`` in customers.selectors
adds the attributes stored in the database to the built-in entries below.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

NUMERIC = "numeric"
CATEGORICAL = "categorical"

SOURCE_FIELD = "field"  # a column of the customer table
SOURCE_ATTRIBUTE = "attribute"  # a column of an imported file, kept as is
SOURCE_DERIVED = "derived"  # computed on import from other columns (an expression)
SOURCE_PURCHASES = "purchases"  # computed from the purchase history (RFM values)

# Attribute keys are identifiers we make ourselves: safe inside SQL JSON paths.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TEXT_MAX_LENGTH = 200
CUSTOMER_ID_MAX_LENGTH = 64
# A column with more distinct values than this is text, not a category to count.
CATEGORY_MAX_VALUES = 50


@dataclass(frozen=True)
class Feature:
    """One customer feature and everything the site needs to know about it."""

    key: str
    label: str  # "Annual income (k)": form fields, table headers
    short_label: str  # "income": segment names and reasons
    kind: str = NUMERIC
    unit: str = ""  # " thousand per year": after a value in sentences
    minimum: float | None = None
    maximum: float | None = None
    whole: bool = False
    aliases: tuple[str, ...] = ()  # header names (normalised) that hold it in files
    source: str = SOURCE_FIELD
    help: str = ""
    # May a heavy right skew be log-transformed for training (money, counts)?
    log_allowed: bool = False
    # Built-in fields may be chosen for training; sex never is.
    clusterable: bool = True
    # "higher" or "lower" where that direction is good by definition; "" (every built-in
    # feature) keeps a segment's difference from the average neutral, never good or bad.
    better: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # categorical codes and labels, when fixed
    expression: str = ""  # for a derived attribute: how it was computed
    # A median above this suggests the wrong unit ("income in dollars, not thousands").
    unit_check: UnitCheck | None = None
    # Where a computed feature lives (the column of its source's table), e.g. RFM values.
    column: str = ""
    # Words that name a segment high or low on it by themselves ("lapsed", "recent").
    high_word: str = ""
    low_word: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.kind == NUMERIC

    def describe_range(self) -> str:
        if self.minimum is None and self.maximum is None:
            return "any number"
        if self.maximum is None:
            return f"at least {self.minimum:g}{self.unit}"
        if self.minimum is None:
            return f"at most {self.maximum:g}{self.unit}"
        return f"between {self.minimum:g} and {self.maximum:g}{self.unit}"

    def range_problem(self, value: float) -> str | None:
        """Why ``value`` is not valid for this feature, or None."""
        if not math.isfinite(value):
            return "is not a finite number"
        if self.whole and value != int(value):
            return "must be a whole number"
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= value <= high:
            return f"must be {self.describe_range()}"
        return None

    def snapshot(self) -> dict:
        """What a training run keeps of the feature, so later catalogue edits do not change
        how its model reads values or explains itself."""
        data = asdict(self)
        data.pop("unit_check")
        data["aliases"] = list(self.aliases)
        data["choices"] = [list(choice) for choice in self.choices]
        return data

    @classmethod
    def from_snapshot(cls, data: Mapping) -> Feature:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["aliases"] = tuple(values.get("aliases", ()))
        values["choices"] = tuple(tuple(c) for c in values.get("choices", ()))
        return cls(**values)


@dataclass(frozen=True)
class UnitCheck:
    """Values whose median exceeds ``median_above`` are probably in another unit."""

    median_above: float
    question: str  # "%(median)s" is the file's median
    suggestion: str  # a derivation that would fix it, e.g. "annual_income=[%(column)s]/1000"


def normalise_header(name: str) -> str:
    """'Annual Income (k$)' -> 'annualincome': drop case, spaces, punctuation, bracketed units."""
    without_units = re.sub(r"[(\[{].*?[)\]}]", "", name)
    return re.sub(r"[^a-z0-9]", "", without_units.lower())


def attribute_key(header: str) -> str:
    """A stable key for a file's column: 'MntWines' -> 'mnt_wines', 'Year_Birth' ->
    'year_birth', '2nd phone' -> 'c_2nd_phone'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", header.strip())
    key = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")
    if not key or not key[0].isalpha():
        key = f"c_{key}" if key else "column"
    return key[:40].rstrip("_")


SEX_CHOICES = (("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown"))

# The fields every customer table has. Keys are the database columns.
BUILT_IN: tuple[Feature, ...] = (
    Feature(
        "age",
        "Age",
        "age",
        unit=" years",
        minimum=16,
        maximum=110,
        whole=True,
        aliases=("age", "ageyears"),
        help="In years, 16 to 110.",
        unit_check=UnitCheck(
            median_above=200,
            question="The ages in column %(column)r have a median of %(median)s: are they "
            "years of birth?",
            suggestion="age=%(year)s-[%(column)s]",
        ),
    ),
    Feature(
        "annual_income",
        "Annual income (k)",
        "income",
        unit=" thousand per year",
        minimum=0,
        maximum=100_000,
        aliases=("annualincome", "income", "annualincomek", "yearlyincome", "incomek"),
        help="Thousands a year, e.g. 75.",
        log_allowed=True,
        unit_check=UnitCheck(
            median_above=1_000,
            question="The incomes in column %(column)r have a median of %(median)s: the site "
            "keeps income in thousands a year, so these look like dollars.",
            suggestion="annual_income=[%(column)s]/1000",
        ),
    ),
    Feature(
        "spending_score",
        "Spending score",
        "spending",
        minimum=1,
        maximum=100,
        whole=True,
        aliases=("spendingscore", "score", "spending"),
        help="1 (spends little) to 100 (spends a lot).",
    ),
    Feature(
        "purchase_frequency",
        "Purchases per year",
        "frequency",
        unit=" purchases per year",
        minimum=0,
        maximum=10_000,
        whole=True,
        aliases=(
            "purchasefrequency",
            "purchases",
            "purchasesperyear",
            "frequency",
            "purchasecount",
            "orders",
            "ordersperyear",
        ),
        help="Purchases a year, e.g. 12.",
        log_allowed=True,
    ),
    Feature(
        "sex",
        "Sex",
        "sex",
        kind=CATEGORICAL,
        aliases=("sex", "gender", "genre"),
        help="Shown in segment statistics; never used to place a customer.",
        clusterable=False,
        choices=SEX_CHOICES,
    ),
)
BUILT_IN_KEYS = tuple(f.key for f in BUILT_IN)
ID_ALIASES = (
    "customerid",
    "id",
    "customer",
    "customerno",
    "customernumber",
    "clientid",
    "custid",
)
SEX_ALIASES: dict[str, str] = {
    **dict.fromkeys(("f", "female", "woman", "w", "femme"), "female"),
    **dict.fromkeys(("m", "male", "man", "homme"), "male"),
    **dict.fromkeys(("o", "other", "x", "nonbinary", "non-binary", "diverse", "d"), "other"),
    **dict.fromkeys(("", "u", "unknown", "n/a", "na", "?", "-", "prefer not to say"), "unknown"),
}


@dataclass(frozen=True)
class Catalogue:
    """The features of this site's customers, built-in ones first, then attributes."""

    features: tuple[Feature, ...] = BUILT_IN
    _by_key: dict[str, Feature] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key.update({f.key: f for f in self.features})

    def __iter__(self):
        return iter(self.features)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def get(self, key: str) -> Feature | None:
        return self._by_key.get(key)

    def __getitem__(self, key: str) -> Feature:
        return self._by_key[key]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.features)

    def numeric(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.is_numeric)

    def clusterable(self) -> tuple[Feature, ...]:
        """Features a run may be trained on: the numeric ones (sex never)."""
        return tuple(f for f in self.features if f.is_numeric and f.clusterable)

    def clusterable_categorical(self) -> tuple[Feature, ...]:
        """Categorical attributes a run may use, one-hot encoded (clustering.encoding); sex
        (a field, not clusterable) never."""
        return tuple(
            f
            for f in self.features
            if f.kind == CATEGORICAL and f.clusterable and f.source != SOURCE_FIELD
        )

    def categorical(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.kind == CATEGORICAL)

    def attributes(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.source != SOURCE_FIELD)

    def ordered(self, keys: Iterable[str]) -> tuple[str, ...]:
        """``keys`` in catalogue order, without duplicates or unknown ones."""
        wanted = set(keys)
        return tuple(key for key in self.keys if key in wanted)

    def by_alias(self, header: str) -> Feature | None:
        """The feature a file's column header names, by alias or by its own key/label."""
        name = normalise_header(header)
        for feature in self.features:
            names = {*feature.aliases, normalise_header(feature.key)}
            names.add(normalise_header(feature.label))
            if name in names or name.replace("_", "") in names:
                return feature
        return None

    def labels(self) -> dict[str, str]:
        return {f.key: f.short_label for f in self.features}

    def words(self) -> dict[str, tuple[str, str]]:
        return {f.key: (f.high_word, f.low_word) for f in self.features if f.high_word}


BUILT_IN_CATALOGUE = Catalogue()


def feature_label(key: str, catalogue: Catalogue = BUILT_IN_CATALOGUE) -> str:
    feature = catalogue.get(key)
    return feature.label if feature else key.replace("_", " ").capitalize()
