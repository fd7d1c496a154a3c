"""The CSV row rules shared by the command and the upload page (no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from customers.csv_format import EXPORT_COLUMNS, map_columns, parse_row
from customers.models import RANGES
from customers.services import format_number

MAPPING = map_columns(list(EXPORT_COLUMNS))


def whole(field: str):
    bounds = RANGES[field]
    return st.integers(min_value=int(bounds.minimum), max_value=int(bounds.maximum))


@given(
    income=st.floats(
        min_value=RANGES["annual_income"].minimum, max_value=RANGES["annual_income"].maximum
    )
)
def test_every_valid_income_survives_export_and_import_exactly(income):
    cells = ["X", "female", "30", format_number(income), "50", ""]

    customer, errors = parse_row(cells, 2, MAPPING)

    assert errors == []
    assert customer.annual_income == income


@given(age=whole("age"), score=whole("spending_score"), frequency=whole("purchase_frequency"))
def test_every_in_range_row_is_accepted_with_its_values(age, score, frequency):
    cells = ["X", "male", str(age), "40", str(score), str(frequency)]

    customer, errors = parse_row(cells, 2, MAPPING)

    assert errors == []
    assert (customer.age, customer.spending_score, customer.purchase_frequency) == (
        age,
        score,
        frequency,
    )


@given(
    score=st.integers().filter(
        lambda n: not RANGES["spending_score"].minimum <= n <= RANGES["spending_score"].maximum
    )
)
def test_every_out_of_range_score_is_rejected_naming_the_range(score):
    cells = ["X", "male", "30", "40", str(score), ""]

    customer, errors = parse_row(cells, 9, MAPPING)

    assert customer is None
    assert [str(e) for e in errors] == [
        f"row 9, column 'spending_score': spending score must be between 1 and 100 "
        f"(value {str(score)!r})"
    ]


def test_a_long_value_is_shortened_in_the_message():
    long_id = "x" * 65
    customer, errors = parse_row([long_id, "", "30", "40", "50", ""], 4, MAPPING)

    assert customer is None
    assert str(errors[0]) == (
        "row 4, column 'customer_id': customer id is longer than 64 characters "
        f"(value {'x' * 37 + '...'!r})"
    )
