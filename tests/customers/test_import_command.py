"""import_customers: header mapping, upsert, all-or-nothing and whole-file errors."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from customers.models import Customer
from tests.customers.factories import CustomerFactory
from tests.customers.helpers import MALL_HEADER, MALL_ROWS, csv_text, stored, values

pytestmark = pytest.mark.django_db

SEX = {"Male": "male", "Female": "female"}


def mall_expected(row: str) -> tuple[str, tuple]:
    """The customer a Mall Customers row describes, as (ID, stored values)."""
    customer_id, genre, age, income, score = row.split(",")
    return customer_id, (SEX[genre], int(age), float(income), int(score), None)


@pytest.fixture
def bystander():
    """A customer stored before the import, whose values must survive a failed import."""
    return CustomerFactory(customer_id="0001", age=64, annual_income=99.5, spending_score=3)


# --- Header mapping -----------------------------------------------------------------------------


def test_mall_customers_file_with_crlf_line_endings_imports_every_row(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER, *MALL_ROWS, newline="\r\n"))

    import_customers(path)

    expected = dict(mall_expected(row) for row in MALL_ROWS)
    assert {cid: v[:5] for cid, v in stored().items()} == expected


def test_customer_ids_keep_their_leading_zeros(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER, "0001,Male,19,15,39", "007,Female,20,16,6"))

    import_customers(path)

    assert set(Customer.objects.values_list("customer_id", flat=True)) == {"0001", "007"}


def test_the_report_names_the_column_feeding_each_field(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER, *MALL_ROWS))

    result = import_customers(path)

    for header, field in (
        ("CustomerID", "customer_id"),
        ("Genre", "sex"),
        ("Annual Income (k$)", "annual_income"),
        ("Spending Score (1-100)", "spending_score"),
    ):
        assert f"'{header}' -> {field}" in result.stdout


def test_utf8_file_with_byte_order_mark_reads_its_first_column(write_csv, import_customers):
    content = "\ufeff" + csv_text("customer_id,age,annual_income,spending_score", "A-1,30,40,50")
    path = write_csv(content)

    import_customers(path)

    assert values("A-1") == ("unknown", 30, 40.0, 50, None)


def test_semicolon_file_with_decimal_comma_incomes(write_csv, import_customers):
    path = write_csv(
        csv_text(
            "Kundennummer;Gender;Age;Income;Spending Score;Purchases",
            "K1;f;30;45,5;60;12",
            "K2;m;41;120,25;7;",
        )
    )

    import_customers(path, "--map", "Kundennummer=customer_id")

    assert values("K1") == ("female", 30, 45.5, 60, 12)
    assert values("K2") == ("male", 41, 120.25, 7, None)


def test_tab_delimited_file(write_csv, import_customers):
    path = write_csv(
        csv_text(
            "CustomerID\tSex\tAge\tAnnual Income (k$)\tSpending Score", "T1\tother\t52\t88\t91"
        )
    )

    import_customers(path)

    assert values("T1") == ("other", 52, 88.0, 91, None)


def test_map_option_feeds_a_field_from_a_column_with_an_unknown_name(write_csv, import_customers):
    path = write_csv(csv_text("Client ref,Age,Income,Score,Orders", "R-9,33,61,44,17"))

    import_customers(path, "--map", "Client ref=customer_id")

    assert values("R-9") == ("unknown", 33, 61.0, 44, 17)


def test_map_option_wins_over_a_column_recognised_by_name(write_csv, import_customers):
    path = write_csv(csv_text("ID,Age,Age at signup,Income,Score", "R-7,40,22,61,44"))

    import_customers(path, "--map", "Age at signup=age")

    assert values("R-7")[1] == 22


def test_map_option_with_an_unknown_field_is_refused_and_writes_nothing(
    write_csv, import_customers, bystander
):
    path = write_csv(csv_text("Client ref,Age,Income,Score", "R-9,33,61,44"))
    before = stored()

    with pytest.raises(CommandError, match='must look like "Source column=field"'):
        import_customers(path, "--map", "Client ref=client")

    assert stored() == before


def test_unknown_extra_columns_are_reported_as_ignored_not_fatal(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER + ",Email,City", "0001,Male,19,15,39,a@b.example,Lyon"))

    result = import_customers(path)

    assert "Ignored columns: Email, City" in result.stdout
    assert values("0001") == ("male", 19, 15.0, 39, None)


def test_a_file_without_a_field_imports_new_customers_with_it_unknown(write_csv, import_customers):
    path = write_csv(csv_text("CustomerID,Genre,Age,Annual Income (k$)", "0001,Male,19,15"))

    import_customers(path)

    assert values("0001") == ("male", 19, 15.0, None, None)


def test_blank_cells_stay_unknown_and_the_row_is_imported(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER, "0001,Male,,15,39", "0002,,21,,"))

    result = import_customers(path)

    assert "2 created" in result.stdout
    assert values("0001") == ("male", None, 15.0, 39, None)
    assert values("0002") == ("unknown", 21, None, None, None)


def test_two_columns_for_one_field_is_an_error_naming_both(write_csv, import_customers):
    path = write_csv(csv_text("ID,Gender,Genre,Age,Income,Score", "1,f,f,30,40,50"))

    with pytest.raises(CommandError) as failure:
        import_customers(path)

    assert "columns 'Gender' and 'Genre' both map to sex" in str(failure.value)
    assert not Customer.objects.exists()


def test_rows_of_empty_cells_left_by_spreadsheets_are_skipped(write_csv, import_customers):
    path = write_csv(
        csv_text("customer_id;age;annual_income;spending_score", "S1;30;40;50", ";;;", ";;;")
    )

    result = import_customers(path)

    assert "Skipped 2 blank line(s)." in result.stdout
    assert list(Customer.objects.values_list("customer_id", flat=True)) == ["S1"]


# --- Upsert -------------------------------------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER, *MALL_ROWS))
    import_customers(path)
    before = stored()

    result = import_customers(path)

    assert f"0 created, 0 updated, {len(MALL_ROWS)} unchanged" in result.stdout
    assert stored() == before


def test_a_changed_value_updates_only_that_customer(write_csv, import_customers):
    import_customers(write_csv(csv_text(MALL_HEADER, *MALL_ROWS)))
    before = stored()
    changed = [row.replace("0003,Female,20,16,6", "0003,Female,20,16,60") for row in MALL_ROWS]
    assert changed != list(MALL_ROWS)

    result = import_customers(write_csv(csv_text(MALL_HEADER, *changed), name="changed.csv"))

    after = stored()
    assert f"0 created, 1 updated, {len(MALL_ROWS) - 1} unchanged" in result.stdout
    assert after["0003"][3] == 60
    assert after["0003"][5] > before["0003"][5]
    assert {k: v for k, v in after.items() if k != "0003"} == {
        k: v for k, v in before.items() if k != "0003"
    }


def test_a_file_without_a_column_leaves_that_value_of_existing_customers_alone(
    write_csv, import_customers
):
    CustomerFactory(customer_id="0001", sex="male", purchase_frequency=17, age=30)
    CustomerFactory(customer_id="0002", sex="female", purchase_frequency=4, age=21)
    # The Mall layout has neither purchases per year nor (here) sex.
    rows = ("0001,31,15,39", "0002,21,15,81")

    result = import_customers(
        write_csv(csv_text("CustomerID,Age,Annual Income (k$),Spending Score (1-100)", *rows)),
        "--yes",  # every existing customer changes
    )

    after = stored()
    assert after["0001"][:5] == ("male", 31, 15.0, 39, 17)
    assert after["0002"][:5] == ("female", 21, 15.0, 81, 4)
    assert "0 created, 2 updated, 0 unchanged" in result.stdout


def test_customers_missing_from_the_file_are_kept(write_csv, import_customers):
    other = CustomerFactory(customer_id="X-1")
    before = stored()[other.customer_id]

    import_customers(write_csv(csv_text(MALL_HEADER, *MALL_ROWS)))

    assert stored()[other.customer_id] == before
    assert Customer.objects.count() == len(MALL_ROWS) + 1


# --- All or nothing -----------------------------------------------------------------------------

# The bad row is row 7: the header is row 1 and the five Mall rows are rows 2 to 6.
INVALID_ROWS = {
    "text in a number column": (
        "0006,Male,abc,20,50",
        "row 7, column 'Age': age is not a number (value 'abc')",
    ),
    "score out of range": (
        "0006,Male,30,20,101",
        "row 7, column 'Spending Score (1-100)': spending score must be between 1 and 100 "
        "(value '101')",
    ),
    "unknown sex": (
        "0006,Robot,30,20,50",
        "row 7, column 'Genre': sex must be female, male, other or unknown (or empty) "
        "(value 'Robot')",
    ),
    "customer ID repeated inside the file": (
        "0002,Male,30,20,50",
        "row 7, column 'CustomerID': customer ID repeats row 3 (value '0002')",
    ),
    "wrong number of values": (
        "0006,Male,30,20",
        "row 7: has 4 values where the header has 5 columns",
    ),
}


@pytest.mark.parametrize(
    "bad_row", [row for row, _ in INVALID_ROWS.values()], ids=INVALID_ROWS.keys()
)
def test_a_file_with_an_invalid_row_imports_nothing_and_fails(
    write_csv, import_customers, bystander, bad_row
):
    path = write_csv(csv_text(MALL_HEADER, *MALL_ROWS, bad_row))
    before = stored()

    with pytest.raises(CommandError) as failure:
        import_customers(path)

    assert "1 problem(s) in 1 row(s); nothing was imported" in str(failure.value)
    assert stored() == before


@pytest.mark.parametrize("bad_row, report_line", INVALID_ROWS.values(), ids=INVALID_ROWS.keys())
def test_the_report_of_an_invalid_row_gives_row_column_and_reason(
    write_csv, import_customers, bad_row, report_line
):
    path = write_csv(csv_text(MALL_HEADER, *MALL_ROWS, bad_row))

    with pytest.raises(CommandError):
        import_customers(path)

    assert report_line in import_customers.stderr.splitlines()[0]


def test_every_problem_in_every_row_is_reported(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER, "0001,Male,abc,15,0", *MALL_ROWS[1:], "0009,?,19,-3,5"))

    with pytest.raises(CommandError) as failure:
        import_customers(path)

    assert [line.strip() for line in import_customers.stderr.splitlines()] == [
        "row 2, column 'Age': age is not a number (value 'abc')",
        "row 2, column 'Spending Score (1-100)': spending score must be between 1 and 100 "
        "(value '0')",
        "row 7, column 'Annual Income (k$)': annual income (k) must be between 0 and 100000 "
        "thousand per year (value '-3')",
    ]
    assert "3 problem(s) in 2 row(s)" in str(failure.value)
    assert not Customer.objects.exists()


def test_skip_invalid_imports_only_the_valid_rows(write_csv, import_customers):
    path = write_csv(
        csv_text(MALL_HEADER, *MALL_ROWS, "0006,Male,abc,20,50", "0007,Robot,30,20,50")
    )

    result = import_customers(path, "--skip-invalid")

    assert set(stored()) == {mall_expected(row)[0] for row in MALL_ROWS}
    assert f"{len(MALL_ROWS)} created" in result.stdout
    assert "2 invalid row(s) skipped" in result.stdout


def test_skip_invalid_keeps_the_first_of_two_rows_with_one_id(write_csv, import_customers):
    path = write_csv(csv_text(MALL_HEADER, "0001,Male,19,15,39", "0001,Female,50,90,90"))

    import_customers(path, "--skip-invalid")

    assert values("0001") == ("male", 19, 15.0, 39, None)


def test_dry_run_writes_nothing(write_csv, import_customers, bystander):
    path = write_csv(csv_text(MALL_HEADER, *MALL_ROWS))
    before = stored()

    result = import_customers(path, "--dry-run")

    n = len(MALL_ROWS)
    assert f"Dry run: {n} of {n} rows are valid; nothing was written." in result.stdout
    assert stored() == before


def test_dry_run_of_a_file_with_invalid_rows_fails(write_csv, import_customers, bystander):
    path = write_csv(csv_text(MALL_HEADER, *MALL_ROWS, "0006,Male,abc,20,50"))
    before = stored()

    with pytest.raises(CommandError, match="nothing was imported"):
        import_customers(path, "--dry-run")

    assert stored() == before


# --- Whole-file errors --------------------------------------------------------------------------

HEADER = "customer_id,age,annual_income,spending_score"
WHOLE_FILE_ERRORS = {
    "empty file": (b"", "the file is empty"),
    "only whitespace": (b"  \r\n\t\n   \n", "the file is empty"),
    "binary file": (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)),
        "this is not a CSV file: it contains binary data",
    ),
    # Latin-1 and Windows-1252 files are read after a confirmation (tests/hardening).
    "neither UTF-8 nor Windows-1252": (
        f"{HEADER},name\n0001,30,50,50,J\x81\n".encode("latin-1"),
        "the file is not UTF-8 text (byte 0x81 on line 2), nor Windows-1252",
    ),
    "no recognisable columns": (
        b"name,email,city\nAnn,ann@example.com,Lyon\n",
        "no column of the file is a customer feature ('name', 'email', 'city'); name the "
        "columns to keep (the import command takes --attributes all, --map and --derive)",
    ),
    "a quote left open": (
        f'{HEADER}\n1,20,30,40\n"2,20,30,40\n3,20,30,40\n4,20,30,40\n'.encode(),
        "line 3 has a quote that is never closed",
    ),
    "a huge field": (
        f"{HEADER}\n1,20,30,40\n{'9' * 20_000},20,30,40\n4,20,30,40\n".encode(),
        "line 3 has a value longer than 10,000 characters",
    ),
    "only a header": (f"{HEADER}\r\n".encode(), "no customer rows; nothing to import"),
    "a header and blank lines": (f"{HEADER}\n\n\n".encode(), "no customer rows; nothing to import"),
}


@pytest.mark.parametrize(
    "content, message", WHOLE_FILE_ERRORS.values(), ids=WHOLE_FILE_ERRORS.keys()
)
def test_an_unreadable_file_is_one_clear_error_and_writes_nothing(
    write_csv, import_customers, bystander, content, message
):
    path = write_csv(content)
    before = stored()

    with pytest.raises(CommandError) as failure:
        import_customers(path)

    assert str(failure.value).startswith(f"{path}: ")
    assert message in str(failure.value)
    assert stored() == before


@pytest.mark.parametrize(
    "content",
    [WHOLE_FILE_ERRORS["a quote left open"][0], WHOLE_FILE_ERRORS["a huge field"][0]],
    ids=["a quote left open", "a huge field"],
)
def test_skip_invalid_does_not_import_part_of_a_broken_file(write_csv, import_customers, content):
    path = write_csv(content)

    with pytest.raises(CommandError, match="line 3 has"):
        import_customers(path, "--skip-invalid")

    assert not Customer.objects.exists()


def test_bytes_that_are_not_utf8_far_into_a_file_import_nothing(write_csv, import_customers):
    rows = [f"{i:06d},30,40,50" for i in range(6_000)]  # 96 KB of good rows first
    content = csv_text(HEADER, *rows).encode() + "Müller,30,40,50\n".encode("latin-1")
    path = write_csv(content)

    with pytest.raises(CommandError) as failure:
        import_customers(path, "--skip-invalid")

    bad_line = len(rows) + 2  # after the header and the good rows
    assert f"the file is not UTF-8 text (byte 0xfc on line {bad_line})" in str(failure.value)

    assert not Customer.objects.exists()


def test_a_missing_file_is_named_in_the_error(tmp_path, import_customers):
    path = tmp_path / "no-such.csv"

    with pytest.raises(CommandError, match=f"{path}: no such file"):
        import_customers(path)


def test_a_folder_instead_of_a_file_is_named_in_the_error(tmp_path, import_customers):
    with pytest.raises(CommandError, match="is a folder, not a file"):
        import_customers(tmp_path)


# --- Large files --------------------------------------------------------------------------------


def test_a_file_of_several_chunks_imports_every_row_once(write_csv, import_customers, monkeypatch):
    # Chunks of 1,500 rows: several COPY rounds on PostgreSQL, multi-statement chunks on SQLite.
    monkeypatch.setattr("customers.services.CHUNK_ROWS", 1_500)
    rows = [f"{i:05d},{16 + i % 90},{i % 300}.5,{1 + i % 100},{i % 50}" for i in range(4_000)]
    path = write_csv(csv_text(HEADER + ",purchase_frequency", *rows))

    first = import_customers(path).stdout
    second = import_customers(path).stdout

    assert "4000 created, 0 updated, 0 unchanged" in first
    assert "0 created, 0 updated, 4000 unchanged" in second
    assert Customer.objects.count() == 4_000
    assert values("03999") == ("unknown", 16 + 3999 % 90, 3999 % 300 + 0.5, 100, 3999 % 50)


def test_with_more_problems_than_listed_every_invalid_row_is_still_counted(
    write_csv, import_customers
):
    bad = [f"B{i:05d},30,40,300" for i in range(1_100)]  # spending scores out of range
    good = [f"G{i},30,40,50" for i in range(5)]
    path = write_csv(csv_text(HEADER, *bad, *good))

    import_customers(path, "--skip-invalid")

    assert "5 created, 0 updated, 0 unchanged, 1100 invalid row(s) skipped" in (
        import_customers.stdout
    )
    assert "... and 100 more" in import_customers.stderr
    assert set(stored()) == {row.split(",")[0] for row in good}


def test_with_more_problems_than_listed_a_repeated_id_is_still_skipped(write_csv, import_customers):
    bad = [f"B{i:05d},30,40,300" for i in range(1_100)]  # spending scores out of range
    path = write_csv(csv_text(HEADER, "G1,30,40,50", *bad, "G1,99,99,99"))

    import_customers(path, "--skip-invalid")

    assert "1101 invalid row(s) skipped" in import_customers.stdout
    assert values("G1") == ("unknown", 30, 40.0, 50, None)


def test_a_nul_byte_in_a_customer_id_deep_in_a_file_is_an_invalid_row(write_csv, import_customers):
    rows = [f"{i:06d},30,40,50" for i in range(6_000)]  # past the binary check of the first 64 KB
    path = write_csv(csv_text(HEADER, *rows, "AB\x00C,30,40,50"))

    with pytest.raises(CommandError, match="1 problem"):
        import_customers(path)

    assert (
        "row 6002, column 'customer_id': customer ID contains a control or text-direction "
        "character" in import_customers.stderr
    )
    assert not Customer.objects.exists()
