"""Stricter parsing on every path a value comes in by (a file through the command and the
upload page, the admin's form, the prediction form, the API), wide headers refused at
once, and files that are not UTF-8 read after a confirmation."""

from __future__ import annotations

import io
import json
import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from clustering.tokens import api_token_create
from customers.models import Attribute, Customer, ImportRecord
from tests.hardening.conftest import bearer

pytestmark = pytest.mark.django_db

HEADER = "customer_id,sex,age,annual_income,spending_score,purchase_frequency"
GOOD = "NEW-1,female,30,50,50,10"

# Text Python's float() or int() would take as a number, which is not a plain decimal.
NOT_PLAIN_NUMBERS = {
    "underscore": "3_0",
    "Arabic-Indic digits": "\u0663\u0660",
    "full-width digits": "\uff13\uff10",
    "exponent": "1e2",
    "Devanagari digits": "\u0969\u0966",
}

# IDs that print as something else, or break the line they are shown on.
HIDDEN_IN_IDS = {
    "newline": "X\n7",
    "escape": "X\x1b7",
    "bell": "X\x077",
    "right-to-left override": "X\u202e7",
    "left-to-right isolate": "X\u20667",
    "zero-width space": "X\u200b7",
    "line separator": "X\u20287",
}


def import_file(tmp_path, content: bytes, *options: str):
    path = tmp_path / "customers.csv"
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "import_customers", str(path), "--no-progress", *options, stdout=out, stderr=err
        )
    except CommandError as failure:
        return False, f"{failure}\n{err.getvalue()}\n{out.getvalue()}"
    return True, f"{err.getvalue()}\n{out.getvalue()}"


def csv_quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


# --- Numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", NOT_PLAIN_NUMBERS.values(), ids=NOT_PLAIN_NUMBERS.keys())
def test_a_file_with_a_number_that_is_not_plain_is_refused_naming_row_and_column(tmp_path, text):
    content = f"{HEADER}\n{GOOD}\nNEW-2,male,{text},50,50,10\n".encode()

    imported, report = import_file(tmp_path, content, "--yes")

    assert not imported
    assert f"row 3, column 'age': age is not a number (value {text!r})" in report
    assert not Customer.objects.exists()


def test_a_decimal_comma_is_read_where_the_delimiter_allows_it(tmp_path):
    content = f"{HEADER.replace(',', ';')}\nNEW-1;female;30;75,5;50;10\n".encode()

    imported, report = import_file(tmp_path, content)

    assert imported, report
    assert Customer.objects.get().annual_income == 75.5


@pytest.mark.parametrize("text", NOT_PLAIN_NUMBERS.values(), ids=NOT_PLAIN_NUMBERS.keys())
def test_the_admin_form_refuses_a_number_that_is_not_plain(admin_client, text):
    customer = Customer.objects.create(customer_id="C-1", age=40, annual_income=60)
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    form = {"customer_id": "C-1", "sex": "unknown", "age": text, "annual_income": "60"}

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "age" in response.context["adminform"].form.errors
    assert Customer.objects.get().age == 40


@pytest.mark.parametrize("text", NOT_PLAIN_NUMBERS.values(), ids=NOT_PLAIN_NUMBERS.keys())
def test_the_prediction_form_refuses_a_number_that_is_not_plain(client, trained, marketer, text):
    client.force_login(marketer)
    form = {"age": text, "annual_income": "60", "spending_score": "50", "purchase_frequency": "9"}

    response = client.post("/predict/", form, headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="segment-name"' not in html
    assert "Age must be" in html


@pytest.mark.parametrize("digits", [31, 5_000])
def test_an_api_number_with_thousands_of_digits_names_the_field(client, trained, marketer, digits):
    secret = api_token_create(user=marketer, name="crm")[1]
    body = b'{"customers": [{"age": ' + b"9" * digits + b', "annual_income": 50}]}'

    response = client.post(
        "/api/predict/", body, content_type="application/json", headers=bearer(secret)
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["customers[0].age"] == [f"A number of {digits:,} digits is not a valid value."]
    assert "body" not in errors


# --- IDs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("customer_id", HIDDEN_IN_IDS.values(), ids=HIDDEN_IN_IDS.keys())
def test_a_file_id_with_a_hidden_character_is_refused_naming_row_and_column(tmp_path, customer_id):
    content = f"{HEADER}\n{GOOD}\n{csv_quoted(customer_id)},male,30,50,50,10\n".encode()

    imported, report = import_file(tmp_path, content, "--yes")

    assert not imported
    row = 3
    assert (
        f"row {row + customer_id.count(chr(10))}, column 'customer_id': customer ID contains "
        "a control or text-direction character" in report
    ), report
    assert not Customer.objects.exists()


def test_a_stray_quote_in_an_unquoted_id_is_refused(tmp_path):
    content = f'{HEADER}\n{GOOD}\nX"7,male,30,50,50,10\n'.encode()

    imported, report = import_file(tmp_path, content, "--yes")

    assert not imported
    assert "row 3, column 'customer_id': customer ID contains a stray double quote" in report
    assert not Customer.objects.exists()


def test_a_quote_inside_a_quoted_id_is_part_of_the_id(tmp_path):
    content = f'{HEADER}\n"X""7",male,30,50,50,10\n'.encode()

    imported, report = import_file(tmp_path, content)

    assert imported, report
    assert Customer.objects.get().customer_id == 'X"7'


@pytest.mark.parametrize("customer_id", HIDDEN_IN_IDS.values(), ids=HIDDEN_IN_IDS.keys())
def test_the_admin_form_refuses_an_id_with_a_hidden_character(admin_client, customer_id):
    url = reverse("admin:customers_customer_add")
    form = {"customer_id": customer_id, "sex": "unknown", "age": "30"}

    response = admin_client.post(url, form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "control or text-direction character" in errors["customer_id"][0]
    assert not Customer.objects.exists()


@pytest.mark.parametrize("customer_id", HIDDEN_IN_IDS.values(), ids=HIDDEN_IN_IDS.keys())
def test_the_api_refuses_an_id_with_a_hidden_character(client, trained, marketer, customer_id):
    secret = api_token_create(user=marketer, name="crm")[1]
    customer = {
        "customer_id": customer_id,
        "age": 30,
        "annual_income": 60,
        "spending_score": 50,
        "purchase_frequency": 20,
    }

    response = client.post(
        "/api/predict/",
        json.dumps({"customers": [customer]}),
        content_type="application/json",
        headers=bearer(secret),
    )

    assert response.status_code == 400
    assert "control or text-direction" in response.json()["errors"]["customers[0].customer_id"][0]


# --- Wide headers ------------------------------------------------------------------------------


def wide_file(columns: int) -> bytes:
    header = ",".join(f"column_{i}" for i in range(columns))
    row = ",".join("7" for _ in range(columns))
    return f"{header}\n{row}\n{row}\n".encode()


@pytest.mark.parametrize("columns", [100_000, 30_000])
def test_a_header_with_thousands_of_names_is_refused_at_once_on_the_page(
    client, manager, columns, var_dir
):
    client.force_login(manager)
    upload = SimpleUploadedFile("wide.csv", wide_file(columns))

    started = time.monotonic()
    response = client.post("/customers/import/", {"file": upload})
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed < 5, f"the upload took {elapsed:.1f} s"
    assert len(response.content) < 50_000
    html = response.content.decode()
    assert f"line 1 has {columns:,} columns; the importer takes at most 500" in html
    assert list((var_dir / "uploads").iterdir()) == []


@pytest.mark.parametrize("columns", [100_000, 30_000])
def test_a_header_with_thousands_of_names_is_refused_at_once_by_the_command(tmp_path, columns):
    started = time.monotonic()
    imported, report = import_file(tmp_path, wide_file(columns))

    assert not imported
    assert time.monotonic() - started < 5
    assert f"line 1 has {columns:,} columns; the importer takes at most 500" in report


def test_the_widest_file_the_importer_takes_gets_its_column_step_quickly(client, manager):
    """500 columns, each a choice with its first values: the step is linear in the columns."""
    client.force_login(manager)
    upload = SimpleUploadedFile("wide.csv", wide_file(500))

    started = time.monotonic()
    response = client.post("/customers/import/", {"file": upload})
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed < 5, f"the column step took {elapsed:.1f} s"
    assert response.content.decode().count("<select") == 500


# --- Encodings ---------------------------------------------------------------------------------

WESTERN = f"{HEADER},city\nNEW-1,female,30,50,50,10,Orléans\nNEW-2,male,40,60,20,5,Besançon\n"


@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
def test_a_western_european_file_waits_for_a_confirmation_saying_how_it_was_read(tmp_path, codec):
    imported, report = import_file(tmp_path, WESTERN.encode(codec), "--attributes", "city")

    assert not imported
    assert "the file is not UTF-8 text (byte 0xe9 on line 2)" in report
    assert "it was read as Windows-1252 (Western European), which reads 'Orléans'" in report
    assert "Pass --encoding cp1252 (or --yes)" in report
    assert not Customer.objects.exists()


@pytest.mark.parametrize("option", [["--encoding", "cp1252"], ["--yes"]], ids=["encoding", "yes"])
def test_a_western_european_file_imports_after_the_confirmation(tmp_path, option):
    content = WESTERN.encode("cp1252")

    imported, report = import_file(tmp_path, content, "--attributes", "city", *option)

    assert imported, report
    cities = dict(Customer.objects.values_list("customer_id", "attributes"))
    assert cities == {"NEW-1": {"city": "Orléans"}, "NEW-2": {"city": "Besançon"}}
    assert ImportRecord.objects.get().mapping["encoding"] == "Windows-1252 (Western European)"


def test_the_upload_page_says_how_a_western_european_file_was_read_and_asks(client, manager):
    client.force_login(manager)
    content = f"{HEADER}\nNEW-1,female,30,50,50,10\nNÉW-2,male,40,60,20,5\n".encode("cp1252")

    first = client.post("/customers/import/", {"file": SimpleUploadedFile("w.csv", content)})
    html = first.content.decode()
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    confirm = {"token": token, "filename": "w.csv", "skip_invalid": "0", "columns": "{}"}
    unticked = client.post("/customers/import/confirm/", confirm)
    ticked = client.post("/customers/import/confirm/", {**confirm, "confirmed": "1"})

    assert "This file is not UTF-8 text: it was read as Windows-1252 (Western European)" in html
    assert "which reads “NÉW-2”" in html
    assert 'name="confirmed" value="1" required' in html
    assert unticked.status_code == 200 and "encoding-question" in unticked.content.decode()
    assert ticked.status_code == 302
    assert set(Customer.objects.values_list("customer_id", flat=True)) == {"NEW-1", "NÉW-2"}


def test_a_file_in_neither_utf8_nor_windows_1252_is_refused(tmp_path):
    content = f"{HEADER}\n{GOOD}\nNEW\x81-2,male,30,50,50,10\n".encode("latin-1")

    imported, report = import_file(tmp_path, content, "--yes")

    assert not imported
    assert "the file is not UTF-8 text (byte 0x81 on line 3), nor Windows-1252" in report
    assert not Attribute.objects.exists() and not Customer.objects.exists()
