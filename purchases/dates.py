"""Dates as order logs write them: detected from the values, never guessed silently.

Pure Python. A format is a candidate when it reads the most sampled values (most of them). One
candidate: used. Several (03-04-2024 reads as 3 April or 4 March): the import stops and
asks (--date-format on the command, a choice on the page).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache


@dataclass(frozen=True)
class DateFormat:
    key: str  # what --date-format takes
    label: str
    patterns: tuple[str, ...]  # strptime patterns, date only first, then with a time

    def parse(self, text: str) -> datetime:
        moment = _parse(self.patterns, text.strip())
        if moment is None:
            raise ValueError(f"is not a date in the format {self.label}")
        return moment


@lru_cache(maxsize=65_536)
def _parse(patterns: tuple[str, ...], text: str) -> datetime | None:
    """Cached: an order log repeats its days (ten million rows, a few hundred dates), and
    strptime was a third of the import's time."""
    for pattern in patterns:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


FORMATS: tuple[DateFormat, ...] = (
    DateFormat("yyyymmdd", "yyyymmdd (20240305)", ("%Y%m%d",)),
    DateFormat(
        "iso",
        "yyyy-mm-dd (2024-03-05, with or without a time)",
        ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"),
    ),
    DateFormat(
        "dd-mm-yyyy",
        "dd-mm-yyyy (05-03-2024)",
        ("%d-%m-%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M"),
    ),
    DateFormat(
        "mm-dd-yyyy",
        "mm-dd-yyyy (03-05-2024)",
        ("%m-%d-%Y", "%m-%d-%Y %H:%M:%S", "%m-%d-%Y %H:%M"),
    ),
    DateFormat(
        "dd/mm/yyyy",
        "dd/mm/yyyy (05/03/2024)",
        ("%d/%m/%Y", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"),
    ),
    DateFormat(
        "mm/dd/yyyy",
        "mm/dd/yyyy (03/05/2024)",
        ("%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"),
    ),
    DateFormat("dd.mm.yyyy", "dd.mm.yyyy (05.03.2024)", ("%d.%m.%Y", "%d.%m.%Y %H:%M")),
)
BY_KEY = {f.key: f for f in FORMATS}
# Years outside this range are typos or another format read wrongly (20240305 as a year).
PLAUSIBLE_YEARS = range(1900, 2101)


class AmbiguousDates(ValueError):
    """More than one format reads every sampled value; the user must choose."""

    def __init__(self, candidates: list[DateFormat], examples: list[str]) -> None:
        names = " or ".join(f.key for f in candidates)
        super().__init__(
            f"the dates ({', '.join(examples[:3])}) could be {names}; say which with "
            f"--date-format {candidates[0].key} (or another)"
        )
        self.candidates = candidates
        self.examples = examples[:3]


class UnknownDates(ValueError):
    """No format reads the sampled values."""


def detect_format(values: Iterable[str]) -> DateFormat:
    """The one format that reads the most sampled values (blank ones aside)."""
    sample = [v.strip() for v in values if v.strip()]
    if not sample:
        raise UnknownDates("the date column is empty")
    # A mistyped date (2024-01-45) is that row's problem, not the file's: the formats that
    # read the most values are the candidates, if they read most of them.
    read = {f.key: sum(_plausible(f, v) for v in sample) for f in FORMATS}
    best = max(read.values())
    candidates = [f for f in FORMATS if read[f.key] == best] if 2 * best > len(sample) else []
    if not candidates:
        raise UnknownDates(
            f"the dates ({', '.join(sample[:3])}) are in no known format; use --date-format "
            f"with one of {', '.join(BY_KEY)}"
        )
    if len(candidates) > 1:
        raise AmbiguousDates(candidates, sample)
    return candidates[0]


def _plausible(date_format: DateFormat, text: str) -> bool:
    try:
        return date_format.parse(text).year in PLAUSIBLE_YEARS
    except ValueError:
        return False


def format_by_key(key: str) -> DateFormat:
    if key not in BY_KEY:
        raise ValueError(f"--date-format must be one of {', '.join(BY_KEY)}")
    return BY_KEY[key]


def as_date(moment: datetime) -> date:
    return moment.date()
