"""Broken CSV files through `manage.py import_customers`: each kind gets a message naming the
problem (with its row and column where it has one), and nothing is written.

This is the one place that proves the importer's claim of handling every kind listed here;
tests/customers/ covers the importer's features and a few of the same cases in more depth.
Each file below would otherwise change a stored customer and add a new one, so a partial
write would show. The command runs with --yes, so the only thing that can stop such a write
is the broken part (changing the one stored customer would otherwise ask for confirmation).

Blanks and "NaN" are no longer broken: they stay missing values (see the last test).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from customers.models import Customer

pytestmark = pytest.mark.django_db

HEADER = "customer_id,sex,age,annual_income,spending_score,purchase_frequency"
# Line 2 changes the stored customer, line 3 adds one; the broken part comes after them.
GOOD = ("KEEP-1,male,99,1,1,1", "NEW-1,female,30,50,50,10")


def text(*rows: str, header: str = HEADER, good: tuple[str, ...] = GOOD) -> str:
    return "\n".join((header, *good, *rows)) + "\n"


def lines(*rows: str) -> bytes:
    return text(*rows).encode()


@dataclass(frozen=True)
class Broken:
    content: bytes
    message: str  # must appear in what the command reports


BROKEN: dict[str, Broken] = {
    # --- the file as a whole
    "empty file": Broken(b"", "the file is empty"),
    "only a header": Broken(f"{HEADER}\r\n".encode(), "the file has no customer rows"),
    "blank first line": Broken(b"\n" + lines(), "the first line is blank; it must be the header"),
    "binary file": Broken(bytes(range(256)) * 8, "this is not a CSV file: it contains binary data"),
    "PNG image": Broken(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(200),
        "this is not a CSV file: it contains binary data",
    ),
    # Latin-1 and Windows-1252 files are read after a confirmation (test_parsing); a byte
    # that is text in neither is refused.
    "neither UTF-8 nor Windows-1252": Broken(
        text("NEW-2,female,30,50,50,10").encode("latin-1") + b"NEW-\x81,male,30,50,50,10\n",
        "the file is not UTF-8 text (byte 0x81 on line 5), nor Windows-1252",
    ),
    "UTF-16 encoding (spreadsheet 'Unicode text')": Broken(
        text().replace(",", "\t").encode("utf-16"), "the file is UTF-16 text, not UTF-8"
    ),
    "HTML page saved as .csv": Broken(
        b"<!DOCTYPE html>\n<html><body><table><tr><td>1</td></tr></table></body></html>\n",
        "no column of the file is a customer feature",
    ),
    "pipe-separated": Broken(
        lines().replace(b",", b"|"), "no column of the file is a customer feature"
    ),
    "only an ID column": Broken(
        b"customer_id\nKEEP-1\nNEW-1\n", "no column of the file is a customer feature"
    ),
    "two columns for one field": Broken(
        text(header=HEADER + ",Age (years)", good=tuple(row + ",40" for row in GOOD)).encode(),
        "columns 'age' and 'Age (years)' both map to age",
    ),
    "quote left open": Broken(
        lines('"NEW-2,female,30,50,50,10', "NEW-3,female,30,50,50,10"),
        "line 4 has a quote that is never closed",
    ),
    "huge line": Broken(
        lines("NEW-2,female,30," + "5" * 50_000 + ",50,10"),
        "line 4 has a value longer than 10,000 characters",
    ),
    "NUL byte deep in the file": Broken(
        lines(
            *(f"BULK-{i:05d},female,30,50,50,10" for i in range(3000)), "NEW\x00-2,male,30,50,50,1"
        ),
        "row 3004, column 'customer_id': customer ID contains a control or text-direction "
        "character",
    ),
    # --- one row
    "text in a number column": Broken(
        lines("NEW-2,female,thirty,50,50,10"),
        "row 4, column 'age': age is not a number (value 'thirty')",
    ),
    "age out of range": Broken(
        lines("NEW-2,female,111,50,50,10"),
        "row 4, column 'age': age must be between 16 and 110 years (value '111')",
    ),
    "spending score out of range": Broken(
        lines("NEW-2,female,30,50,0,10"),
        "row 4, column 'spending_score': spending score must be between 1 and 100 (value '0')",
    ),
    "negative income": Broken(
        lines("NEW-2,female,30,-5,50,10"),
        "row 4, column 'annual_income': annual income (k) must be between 0 and 100000 "
        "thousand per year (value '-5')",
    ),
    "negative purchases": Broken(
        lines("NEW-2,female,30,50,50,-1"),
        "row 4, column 'purchase_frequency': purchases per year must be between 0 and 10000 "
        "purchases per year (value '-1')",
    ),
    "decimal age": Broken(
        lines("NEW-2,female,30.5,50,50,10"),
        "row 4, column 'age': age must be a whole number (value '30.5')",
    ),
    "infinite income": Broken(
        lines("NEW-2,female,30,inf,50,10"),
        "row 4, column 'annual_income': annual income (k) is not a number (value 'inf')",
    ),
    "number with an exponent": Broken(
        lines("NEW-2,female,30,1e3,50,10"),
        "row 4, column 'annual_income': annual income (k) is not a number (value '1e3')",
    ),
    "bad sex value": Broken(
        lines("NEW-2,robot,30,50,50,10"),
        "row 4, column 'sex': sex must be female, male, other or unknown",
    ),
    "blank customer ID": Broken(
        lines("  ,female,30,50,50,10"),
        "row 4, column 'customer_id': customer ID is empty; every customer needs an ID",
    ),
    "customer ID too long": Broken(
        lines("X" * 65 + ",female,30,50,50,10"),
        "row 4, column 'customer_id': customer ID is longer than 64 characters",
    ),
    "text-direction override in an ID": Broken(
        lines("NEW\u202e-2,female,30,50,50,10"),
        "row 4, column 'customer_id': customer ID contains a control or text-direction character",
    ),
    "duplicate ID inside the file": Broken(
        lines("NEW-1,male,40,60,60,6"),
        "row 4, column 'customer_id': customer ID repeats row 3 (value 'NEW-1')",
    ),
    "too few columns": Broken(
        lines("NEW-2,female,30,50"), "row 4: has 4 values where the header has 6 columns"
    ),
    "too many columns": Broken(
        lines("NEW-2,female,30,50,50,10,extra"),
        "row 4: has 7 values where the header has 6 columns",
    ),
}


def test_at_least_twenty_kinds_of_broken_files_are_covered():
    assert len(BROKEN) >= 20


@pytest.fixture
def kept():
    """A customer stored before the import; every file above would change it."""
    return Customer.objects.create(
        customer_id="KEEP-1", sex="female", age=44, annual_income=71.5, spending_score=42
    )


def snapshot() -> list[tuple]:
    return list(Customer.objects.order_by("customer_id").values_list())


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_file_is_refused_with_a_message_naming_the_problem_and_writes_nothing(
    tmp_path, kept, broken
):
    path = tmp_path / "customers.csv"
    path.write_bytes(broken.content)
    before = snapshot()
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as failure:
        call_command(
            "import_customers", str(path), "--no-progress", "--yes", stdout=out, stderr=err
        )

    reported = f"{failure.value}\n{err.getvalue()}"
    assert broken.message in reported, reported[:2000]
    assert "nothing was imported" in reported or str(failure.value).startswith(f"{path}: ")
    assert snapshot() == before
    assert Customer.objects.count() == 1


def test_the_good_part_of_these_files_would_have_been_written(tmp_path, kept):
    """The files above fail because of their broken part, not because of the good rows."""
    path = tmp_path / "customers.csv"
    path.write_bytes(lines())

    call_command("import_customers", str(path), "--no-progress", "--yes", stdout=io.StringIO())

    kept.refresh_from_db()
    assert (kept.sex, kept.age, kept.annual_income) == ("male", 99, 1.0)
    assert Customer.objects.filter(customer_id="NEW-1").exists()


def test_blanks_and_nan_are_imported_as_missing_values_never_as_zero(tmp_path, kept):
    """Two files this suite once refused: an empty age and a "nan" score are unknown values."""
    path = tmp_path / "customers.csv"
    path.write_bytes(lines("NEW-2,female,,50,50,10", "NEW-3,female,30,50,nan,10"))

    call_command("import_customers", str(path), "--no-progress", "--yes", stdout=io.StringIO())

    blank_age = Customer.objects.get(customer_id="NEW-2")
    nan_score = Customer.objects.get(customer_id="NEW-3")
    assert (blank_age.age, blank_age.annual_income) == (None, 50.0)
    assert (nan_score.spending_score, nan_score.age) == (None, 30)
    assert Customer.objects.count() == 4
