"""The order-log import page: upload, columns, dates, report, confirm, background import."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer
from purchases.models import CustomerRfm, Purchase, PurchaseImport
from purchases.tasks import transactions_import_task

pytestmark = pytest.mark.django_db

IMPORT = reverse("purchases:import")
CHECK = reverse("purchases:import_check")
CONFIRM = reverse("purchases:import_confirm")
# customer, date (yyyymmdd), quantity, amount; runs of spaces; no header; a return.
HEADERLESS = b"""\
00001   19970101   1   11.77
00002   19970112   1   12.00
00002   19970112   5   77.00
00003   19970102   2   20.76
00003   19970330   2   -5.50
00004   19970101   2   29.33
00004   19971212   2   26.48
"""


@pytest.fixture
def importer(client, django_user_model):
    user = django_user_model.objects.create_user("clerk", password="not-used")
    user.user_permissions.set(
        Permission.objects.filter(codename__in=("add_customer", "change_customer"))
    )
    client.force_login(user)
    return client


def upload(client, content: bytes, name: str = "orders.txt", **fields):
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, content), **fields})


def hidden(response) -> dict:
    page = response.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    fields["choices"] = json.loads(fields["choices"].replace("&quot;", '"'))
    return fields


def post(client, url: str, fields: dict, **extra):
    data = {**fields, "choices": json.dumps(fields["choices"]), **extra}
    return client.post(url, data)


def confirm_and_run(client, fields: dict, django_capture_on_commit_callbacks) -> PurchaseImport:
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post(client, CONFIRM, fields)
    assert response.status_code == 302 and len(queued) == 1  # the task is queued on commit
    job = PurchaseImport.objects.get()
    transactions_import_task(job.id)  # what the worker runs
    job.refresh_from_db()
    return job


def test_a_headerless_whitespace_log_goes_through_columns_report_and_background_import(
    importer, django_capture_on_commit_callbacks
):
    columns = upload(importer, HEADERLESS)
    page = columns.content.decode()
    assert "What does each column of orders.txt hold?" in page
    # The values tell the guess: dates, then IDs, decimals for the amount, whole numbers.
    assert re.search(r'name="column_0".*?<option value="customer_id" selected', page, re.S)
    assert re.search(r'name="column_1".*?<option value="date" selected', page, re.S)
    assert re.search(r'name="column_3".*?<option value="amount" selected', page, re.S)

    fields = hidden(columns)
    choice = {"step": "columns", "column_0": "customer_id", "column_1": "date",
              "column_2": "quantity", "column_3": "amount"}  # fmt: skip
    report = post(importer, CHECK, fields, **choice)
    text = report.content.decode()
    assert "7 purchase rows, 7 valid (no header row: columns by position)" in text
    assert "Dates read as yyyymmdd" in text
    assert "Import 7 purchases" in text
    assert not Purchase.objects.exists()  # nothing yet: only a report

    job = confirm_and_run(importer, hidden(report), django_capture_on_commit_callbacks)

    assert job.status == PurchaseImport.Status.SUCCEEDED, job.error
    assert (job.purchases_added, job.customers_created, job.rfm_customers) == (7, 4, 4)
    assert CustomerRfm.objects.get(customer__customer_id="00003").monetary_total == (
        pytest.approx(15.26)
    )
    status = importer.get(reverse("purchases:import_status", args=[job.id])).content.decode()
    assert "Imported 7 purchases; 4 new customers created" in status
    assert "RFM values brought up to date for 4 customers" in status


def test_ambiguous_dates_ask_for_the_format_and_the_choice_is_used(
    importer, django_capture_on_commit_callbacks
):
    text = b"customer,date,amount\na,01-02-2024,5\nb,03-04-2024,6\n"

    step = upload(importer, text, "orders.csv")

    page = step.content.decode()
    assert "How are the dates of orders.csv written?" in page
    assert "01-02-2024" in page and 'value="dd-mm-yyyy"' in page and 'value="mm-dd-yyyy"' in page
    fields = hidden(step)
    data = {**fields, "choices": json.dumps(fields["choices"]), "date_format": "dd-mm-yyyy",
            "candidates": ["dd-mm-yyyy", "mm-dd-yyyy"]}  # fmt: skip
    report = importer.post(CHECK, data)
    assert "Dates read as dd-mm-yyyy" in report.content.decode()

    job = confirm_and_run(importer, hidden(report), django_capture_on_commit_callbacks)

    assert job.status == PurchaseImport.Status.SUCCEEDED, job.error
    assert str(Purchase.objects.get(customer__customer_id="a").date) == "2024-02-01"


def test_a_recognised_file_goes_straight_to_the_report_with_its_row_problems(importer):
    text = b"Customer,Date,Amount\na,2024-01-05,50\nb,2024-01-45,5\nc,2024-01-07,abc\n"

    report = upload(importer, text, "orders.csv").content.decode()

    assert "3 purchase rows, 1 valid" in report
    assert "2 problems" in report
    assert "<td>3</td><td>Date</td>" in report and "date is not a date" in report
    assert "<td>4</td><td>Amount</td>" in report and "amount is not a number" in report
    assert "Import 1 purchase" not in report  # all or nothing unless asked
    with_skip = upload(importer, text, "orders.csv", skip_invalid="on").content.decode()
    assert "Import 1 purchase" in with_skip


def test_a_file_imported_before_is_refused_on_the_report(
    importer, django_capture_on_commit_callbacks
):
    text = b"customer,date,amount\na,2024-01-05,50\n"
    first = upload(importer, text, "jan.csv")
    confirm_and_run(importer, hidden(first), django_capture_on_commit_callbacks)

    again = upload(importer, text, "jan-copy.csv").content.decode()

    assert "This file was already imported" in again
    assert "Import 1 purchase" not in again
    assert Purchase.objects.count() == 1


def test_the_column_step_says_what_is_missing(importer):
    fields = hidden(upload(importer, HEADERLESS))

    page = post(importer, CHECK, fields, step="columns", column_0="customer_id").content.decode()

    assert "Choose the column that holds the date and the amount" in page
    assert not Purchase.objects.exists()


def test_a_confirm_twice_imports_once(importer, django_capture_on_commit_callbacks):
    report = upload(importer, b"customer,date,amount\na,2024-01-05,50\n", "o.csv")
    fields = hidden(report)
    confirm_and_run(importer, fields, django_capture_on_commit_callbacks)

    again = post(importer, CONFIRM, fields)

    assert again.status_code == 302 and PurchaseImport.objects.count() == 1
    assert Purchase.objects.count() == 1


def test_a_file_that_fails_in_the_worker_says_why_and_writes_nothing(
    importer, django_capture_on_commit_callbacks
):
    report = upload(importer, b"customer,date,amount\na,2024-01-05,50\n", "o.csv")
    fields = hidden(report)
    Customer.objects.create(customer_id="zzz")  # unrelated; stays
    fields["choices"] = {"columns": ["customer_id", "date", "amount"], "header_row": False}

    job = confirm_and_run(importer, fields, django_capture_on_commit_callbacks)

    # The header row read as a purchase: "date" is not a date. Nothing is half-written.
    assert job.status == PurchaseImport.Status.FAILED
    assert "Nothing was imported" in job.error
    assert not Purchase.objects.exists()
    assert not PurchaseImport.objects.filter(stored_path="").exists()


def test_people_who_may_not_import_customers_may_not_import_purchases(client, marketer):
    client.force_login(marketer)

    assert client.get(IMPORT).status_code == 403
    assert client.post(CONFIRM, {}).status_code == 403
