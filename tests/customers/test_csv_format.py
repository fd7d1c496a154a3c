"""The CSV row rules shared by the command and the upload page (no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from customers.catalogue import BUILT_IN_CATALOGUE as CATALOGUE
from customers.csv_format import MappingRequest, map_columns, parse_row
from customers.services import export_columns, format_number

# The columns export writes (with no attributes yet): the file the importer reads back.
COLUMNS = export_columns(CATALOGUE)
MAPPING = map_columns(list(COLUMNS), CATALOGUE)


def cells(**values: str) -> list[str]:
    """One exported row: every column blank but the ones given."""
    row = {"customer_id": "X", **values}
    return [row.get(column, "") for column in COLUMNS]


def whole(key: str):
    feature = CATALOGUE[key]
    return st.integers(min_value=int(feature.minimum), max_value=int(feature.maximum))


def test_export_writes_the_id_then_the_built_in_fields():
    assert COLUMNS == (
        "customer_id",
        "age",
        "annual_income",
        "spending_score",
        "purchase_frequency",
        "sex",
    )


@given(
    income=st.floats(
        min_value=CATALOGUE["annual_income"].minimum,
        max_value=CATALOGUE["annual_income"].maximum,
    )
)
def test_every_valid_income_survives_export_and_import_exactly(income):
    customer, errors = parse_row(cells(annual_income=format_number(income)), 2, MAPPING)

    assert errors == []
    assert customer.values["annual_income"] == income


def test_a_tiny_income_is_exported_without_an_exponent_and_reads_back():
    text = format_number(1e-05)

    customer, errors = parse_row(cells(annual_income=text), 2, MAPPING)

    assert text == "0.00001"
    assert errors == []
    assert customer.values["annual_income"] == 1e-05


@given(age=whole("age"), score=whole("spending_score"), frequency=whole("purchase_frequency"))
def test_every_in_range_row_is_accepted_with_its_values(age, score, frequency):
    row = cells(age=str(age), spending_score=str(score), purchase_frequency=str(frequency))

    customer, errors = parse_row(row, 2, MAPPING)

    assert errors == []
    values = customer.values
    assert (values["age"], values["spending_score"], values["purchase_frequency"]) == (
        age,
        score,
        frequency,
    )


@given(score=st.integers().filter(lambda n: not 1 <= n <= 100))
def test_every_out_of_range_score_is_rejected_naming_the_range(score):
    customer, errors = parse_row(cells(spending_score=str(score)), 9, MAPPING)

    assert customer is None
    assert [str(e) for e in errors] == [
        f"row 9, column 'spending_score': spending score must be between 1 and 100 "
        f"(value {str(score)!r})"
    ]


def test_blank_cells_stay_missing_and_the_row_is_accepted():
    customer, errors = parse_row(cells(age="", annual_income="  ", spending_score="NA"), 3, MAPPING)

    assert errors == []
    assert customer.values == {
        "age": None,
        "annual_income": None,
        "spending_score": None,
        "purchase_frequency": None,
        "sex": "unknown",
    }


def test_without_an_id_column_the_id_is_the_file_name_and_the_row_number():
    mapping = map_columns(["Age", "Income"], CATALOGUE, MappingRequest(id_prefix="wholesale"))

    first, _ = parse_row(["30", "40"], 2, mapping, ordinal=1)
    second, _ = parse_row(["31", "41"], 3, mapping, ordinal=2)

    assert (first.customer_id, second.customer_id) == ("wholesale-000001", "wholesale-000002")
    assert mapping.id_source() == "the row number, as wholesale-000001, wholesale-000002, ..."


def test_a_long_value_is_shortened_in_the_message():
    customer, errors = parse_row(cells(customer_id="x" * 65, age="30"), 4, MAPPING)

    assert customer is None
    assert str(errors[0]) == (
        "row 4, column 'customer_id': customer ID is longer than 64 characters "
        f"(value {'x' * 37 + '...'!r})"
    )
