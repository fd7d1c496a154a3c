"""import_customers on files of the shapes people really have: no ID, tabs and dollars,
spaces and no header; derived columns, unit questions and the confirmation of big changes."""

from __future__ import annotations

import csv

import pytest
from django.core.management.base import CommandError

from customers.models import Attribute, Customer, ImportRecord
from customers.selectors import catalogue_current
from tests.customers.factories import CustomerFactory
from tests.customers.helpers import csv_text, stored, values
from tests.customers.real_files import (
    MARKETING_DERIVATIONS,
    WHOLESALE_SPEND,
    marketing_file,
    wholesale_file,
)

pytestmark = pytest.mark.django_db

SPEND_KEYS = ("fresh", "milk", "grocery", "frozen", "detergents_paper", "delicassen")


def nothing_written() -> bool:
    return not (
        Customer.objects.exists() or Attribute.objects.exists() or ImportRecord.objects.exists()
    )


def derive_options(derivations=MARKETING_DERIVATIONS) -> list[str]:
    return [option for text in derivations for option in ("--derive", text)]


# --- The wholesale file: no ID column, six spend columns, two code columns ----------------------


def test_the_wholesale_file_imports_with_row_number_ids_and_its_spend_attributes(
    tmp_path, import_customers
):
    path = wholesale_file(tmp_path / "wholesale.csv")
    rows = list(csv.DictReader(path.open()))

    result = import_customers(path, "--attributes", "all", "--categorical", "Channel,Region")

    assert "Customer IDs from the row number, as wholesale-000001, wholesale-000002, ..." in (
        result.stdout
    )
    assert "440 created, 0 updated, 0 unchanged" in result.stdout
    customers = {c.customer_id: c for c in Customer.objects.all()}
    assert len(customers) == 440
    for number, row in enumerate(rows, start=1):
        customer = customers[f"wholesale-{number:06d}"]
        spend = [customer.attributes[key] for key in SPEND_KEYS]
        assert spend == [int(row[column]) for column in WHOLESALE_SPEND]
        assert (customer.attributes["channel"], customer.attributes["region"]) == (
            row["Channel"],
            row["Region"],
        )
        assert (customer.age, customer.annual_income, customer.spending_score) == (None,) * 3


def test_the_wholesale_attributes_join_the_feature_catalogue(tmp_path, import_customers):
    path = wholesale_file(tmp_path / "wholesale.csv")

    import_customers(path, "--attributes", "all", "--categorical", "Channel,Region")

    catalogue = catalogue_current()
    assert [catalogue[key].label for key in SPEND_KEYS] == list(WHOLESALE_SPEND)
    assert all(catalogue[key].is_numeric and catalogue[key].whole for key in SPEND_KEYS)
    assert catalogue["channel"].kind == catalogue["region"].kind == "categorical"
    assert {f.key for f in catalogue.clusterable()} >= set(SPEND_KEYS)


def test_importing_the_wholesale_file_again_changes_nothing(tmp_path, import_customers):
    path = wholesale_file(tmp_path / "wholesale.csv")
    options = ("--attributes", "all", "--categorical", "Channel,Region")
    import_customers(path, *options)
    before = dict(Customer.objects.values_list("customer_id", "attributes"))

    result = import_customers(path, *options)

    assert "0 created, 0 updated, 440 unchanged" in result.stdout
    assert dict(Customer.objects.values_list("customer_id", "attributes")) == before
    assert Attribute.objects.count() == 8  # the second import adds none


# --- The marketing file: tabs, birth years, incomes in dollars with blanks ----------------------


@pytest.fixture
def marketing(tmp_path):
    path = marketing_file(tmp_path / "marketing_campaign.tsv")
    with path.open() as lines:
        rows = {row["ID"]: row for row in csv.DictReader(lines, delimiter="\t")}
    return path, rows


def test_the_marketing_file_imports_with_its_derived_columns(marketing, import_customers):
    path, rows = marketing

    result = import_customers(
        path,
        *derive_options(),
        "--attributes",
        "all",
        "--categorical",
        "Education,Marital_Status",
    )

    assert "1,500 data rows, tab-separated" in result.stdout
    assert "1500 created" in result.stdout
    customers = {c.customer_id: c for c in Customer.objects.all()}
    assert set(customers) == set(rows)
    for customer_id, row in rows.items():
        customer = customers[customer_id]
        assert customer.age == 2014 - int(row["Year_Birth"])
        if row["Income"]:
            assert customer.annual_income == pytest.approx(int(row["Income"]) / 1000)
        else:
            assert customer.annual_income is None
        spend = sum(int(row[c]) for c in ("MntWines", "MntFruits", "MntMeatProducts"))
        spend += sum(int(row[c]) for c in ("MntFishProducts", "MntSweetProducts", "MntGoldProds"))
        assert customer.attributes["total_spend"] == spend
        assert customer.attributes["education"] == row["Education"]


def test_a_blank_income_stays_unknown_and_its_row_is_imported(marketing, import_customers):
    path, rows = marketing
    blank = [customer_id for customer_id, row in rows.items() if not row["Income"]]
    assert blank  # the generator leaves some incomes out

    import_customers(path, *derive_options(), "--attributes", "all")

    assert set(
        Customer.objects.filter(annual_income__isnull=True).values_list("customer_id", flat=True)
    ) == set(blank)
    assert Customer.objects.count() == len(rows)


def test_columns_feeding_a_derived_field_are_not_kept_twice(marketing, import_customers):
    path, _rows = marketing

    result = import_customers(
        path, *derive_options(), "--attributes", "all", "--categorical", "Education"
    )

    keys = set(Attribute.objects.values_list("key", flat=True))
    assert {"year_birth", "income"}.isdisjoint(keys)
    assert {"education", "mnt_wines", "total_spend", "total_purchases"} <= keys
    assert Attribute.objects.get(key="total_spend").source == "derived"
    assert not any(
        {"year_birth", "income"} & set(a)
        for a in Customer.objects.values_list("attributes", flat=True)
    )
    assert "Ignored columns: Year_Birth, Income" in result.stdout


def test_an_income_in_dollars_is_questioned_and_nothing_is_written(marketing, import_customers):
    path, _rows = marketing

    with pytest.raises(CommandError) as failure:
        import_customers(path, "--attributes", "all")

    message = str(failure.value)
    assert "the site keeps income in thousands a year, so these look like dollars" in message
    assert "--derive 'annual_income=[Income]/1000'" in message
    assert nothing_written()


def test_an_income_in_dollars_needs_yes_even_when_invalid_rows_are_skipped(
    marketing, import_customers
):
    path, _rows = marketing

    with pytest.raises(CommandError, match="look like dollars.*Pass --yes"):
        import_customers(path, "--attributes", "all", "--skip-invalid")
    assert nothing_written()

    result = import_customers(path, "--attributes", "all", "--skip-invalid", "--yes")

    assert "invalid row(s) skipped" in result.stdout
    assert Customer.objects.filter(annual_income__gt=1_000).exists()  # as the user said


def test_ages_that_look_like_birth_years_are_questioned(write_csv, import_customers):
    path = write_csv(csv_text("ID,Age", "A,1970", "B,1985", "C,1990"))

    with pytest.raises(CommandError) as failure:
        import_customers(path)

    assert "are they years of birth?" in str(failure.value)
    assert nothing_written()


# --- Files without a header, separated by spaces ------------------------------------------------


def test_a_headerless_whitespace_file_imports_with_named_columns(write_csv, import_customers):
    path = write_csv("C001   35  60.5  50\nC002\t41 70    12\n\nC003 29 18.25 99\n", "scores.txt")

    result = import_customers(path, "--columns", "customer_id,age,annual_income,spending_score")

    assert "spaces-separated (no header row: columns by position)" in result.stdout
    assert values("C001") == ("unknown", 35, 60.5, 50, None)
    assert values("C002") == ("unknown", 41, 70.0, 12, None)
    assert values("C003") == ("unknown", 29, 18.25, 99, None)


def test_a_whitespace_file_with_a_header_is_read_by_name(write_csv, import_customers):
    path = write_csv("ID  Age  Income  Score\nC1  30   40      50\n", "scores.txt")

    import_customers(path)

    assert values("C1") == ("unknown", 30, 40.0, 50, None)


def test_columns_that_do_not_match_the_file_are_refused(write_csv, import_customers):
    path = write_csv("C001 35 60.5 50\n", "scores.txt")

    with pytest.raises(CommandError, match="--columns names 3 columns but the file has 4"):
        import_customers(path, "--columns", "customer_id,age,annual_income")

    assert nothing_written()


# --- Dry runs -----------------------------------------------------------------------------------


def test_a_dry_run_skipping_invalid_rows_counts_the_valid_ones(write_csv, import_customers):
    path = write_csv(csv_text("ID,Age,Score", "A,30,50", "B,31,500", "C,32,", "D,abc,1"))

    result = import_customers(path, "--dry-run", "--skip-invalid")

    assert "Dry run: 2 of 4 rows are valid; nothing was written." in result.stdout
    assert nothing_written()


def test_a_dry_run_with_no_valid_row_fails(write_csv, import_customers):
    path = write_csv(csv_text("ID,Age,Score", "A,300,50", "B,31,500"))

    with pytest.raises(CommandError, match="no row of the file is valid"):
        import_customers(path, "--dry-run", "--skip-invalid")

    assert "Dry run: 0 of 2 rows are valid" in import_customers.stdout
    assert nothing_written()


# --- Many existing customers changed ------------------------------------------------------------


@pytest.fixture
def ten_customers():
    return [CustomerFactory(customer_id=f"K{i}", spending_score=10 + i) for i in range(10)]


def scores_file(write_csv, changed: int):
    """The ten customers' scores, ``changed`` of them new, plus one new customer."""
    rows = [f"K{i},{60 + i if i < changed else 10 + i}" for i in range(10)]
    return write_csv(csv_text("ID,Spending score", *rows, "NEW,70"))


def test_an_import_changing_more_than_a_fifth_of_customers_needs_yes(
    write_csv, import_customers, ten_customers
):
    path = scores_file(write_csv, changed=3)
    before = stored()

    with pytest.raises(CommandError) as failure:
        import_customers(path)

    assert "would change 3 of the 10 existing customers (30%). Pass --yes" in str(failure.value)
    assert stored() == before  # NEW was not created either
    assert not ImportRecord.objects.exists()


def test_a_new_attribute_for_every_customer_changes_them_all_and_needs_yes(
    write_csv, import_customers, ten_customers
):
    path = write_csv(csv_text("ID,Tier", *(f"K{i},gold" for i in range(10))))
    before = stored()

    with pytest.raises(CommandError, match="would change 10 of the 10 existing customers"):
        import_customers(path, "--attributes", "all")

    assert stored() == before
    assert not (Attribute.objects.exists() or ImportRecord.objects.exists())


def test_with_yes_the_import_changing_many_customers_goes_ahead(
    write_csv, import_customers, ten_customers
):
    path = scores_file(write_csv, changed=3)

    result = import_customers(path, "--yes")

    assert "1 created, 3 updated, 7 unchanged" in result.stdout
    assert [values(f"K{i}")[3] for i in range(4)] == [60, 61, 62, 13]
    assert values("NEW")[3] == 70


def test_an_import_changing_a_fifth_of_customers_needs_no_yes(
    write_csv, import_customers, ten_customers
):
    path = scores_file(write_csv, changed=2)

    result = import_customers(path)

    assert "1 created, 2 updated, 8 unchanged" in result.stdout


# --- Derived columns are arithmetic, never code -------------------------------------------------


@pytest.mark.parametrize(
    "derivation",
    ["x=__import__('os')", "x=[Age].__class__", "x=[Age]**2", "age=eval('1')"],
)
def test_a_derivation_that_is_not_arithmetic_is_refused_and_nothing_written(
    write_csv, import_customers, derivation
):
    path = write_csv(csv_text("ID,Age", "A,30"))

    with pytest.raises(CommandError) as failure:
        import_customers(path, "--derive", derivation, "--attributes", "all")

    message = str(failure.value)
    assert message.startswith(f"{path}: ")
    assert "at character" in message  # where the expression goes wrong
    assert nothing_written()


def test_the_import_derivation_refuses_python_naming_what_is_allowed(write_csv, import_customers):
    path = write_csv(csv_text("ID,Age", "A,30"))

    with pytest.raises(CommandError) as failure:
        import_customers(path, "--derive", "x=__import__('os')")

    assert "'__import__' is not allowed at character 1" in str(failure.value)
    assert "functions, names and keywords are not supported" in str(failure.value)
    assert nothing_written()
