"""The upload page: upload, read the validation report, confirm."""

from __future__ import annotations

import html
import os
import re
import time

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from customers.uploads import SESSION_KEY
from tests.customers.factories import CustomerFactory
from tests.customers.helpers import MALL_HEADER, MALL_ROWS, csv_text, stored

pytestmark = pytest.mark.django_db

IMPORT = reverse("customers:import")
CONFIRM = reverse("customers:import_confirm")
VALID = csv_text(MALL_HEADER, *MALL_ROWS, newline="\r\n").encode()
INVALID = csv_text(MALL_HEADER, *MALL_ROWS, "0006,Male,abc,20,50", "0007,Robot,30,20,50").encode()


def user_with(django_user_model, *codenames: str):
    user = django_user_model.objects.create_user("clerk", password="not-used")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def importer(client, django_user_model):
    """A client signed in as a user allowed to import (add and change customers)."""
    client.force_login(user_with(django_user_model, "add_customer", "change_customer"))
    return client


@pytest.fixture
def bystander():
    return CustomerFactory(customer_id="0001", age=64, annual_income=99.5, spending_score=3)


def upload(client, content: bytes, name: str = "customers.csv", **fields):
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, content), **fields})


def confirm_token(response) -> str | None:
    html = response.content.decode()
    if f'action="{CONFIRM}"' not in html:
        return None
    return re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)


def confirm_fields(response) -> dict[str, str]:
    """The hidden fields of the confirm form, as the browser would send them."""
    page = response.content.decode()
    form = re.search(rf'<form method="post" action="{CONFIRM}">.*?</form>', page, re.S)
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group())
    return {name: html.unescape(value) for name, value in fields if name != "csrfmiddlewaretoken"}


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- Who may import -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [IMPORT, CONFIRM])
def test_anonymous_visitor_is_sent_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(
    "codenames",
    [(), ("add_customer",), ("change_customer",), ("view_customer",)],
    ids=["no permission", "add only", "change only", "view only"],
)
def test_a_user_without_add_and_change_permission_is_forbidden(
    client, django_user_model, codenames
):
    client.force_login(user_with(django_user_model, *codenames))

    assert client.get(IMPORT).status_code == 403
    assert upload(client, VALID).status_code == 403
    assert client.post(CONFIRM, {"token": "0" * 32}).status_code == 403
    assert not Customer.objects.exists()


def test_a_permitted_user_sees_the_upload_form(importer):
    response = importer.get(IMPORT)

    assert response.status_code == 200
    assert 'type="file"' in response.content.decode()


# --- Step 1: the report -------------------------------------------------------------------------


def test_a_valid_upload_shows_the_row_count_and_a_confirm_button_without_writing(
    importer, bystander
):
    before = stored()

    response = upload(importer, VALID)

    html = response.content.decode()
    n = len(MALL_ROWS)
    assert response.status_code == 200
    assert f"{n} data rows, {n} valid." in html
    assert f"Import {n} customers</button>" in html
    assert confirm_token(response) is not None
    assert stored() == before


def test_the_report_says_which_fields_the_file_leaves_as_they_are(importer, bystander):
    page = upload(importer, VALID).content.decode()

    assert "Not in this file: Purchases per year. New customers get them as unknown" in page


def test_the_report_names_the_column_used_for_each_field(importer):
    html = upload(importer, VALID).content.decode()

    assert "<code>Spending Score (1-100)</code> → spending_score" in html
    assert "<code>Genre</code> → sex" in html


def test_an_invalid_upload_shows_row_column_and_reason_and_no_confirm_button(importer, bystander):
    before = stored()

    response = upload(importer, INVALID)

    html = response.content.decode()
    assert "<h3>2 problems</h3>" in html
    assert (
        "<tr><td>7</td><td>Age</td><td><code>abc</code></td><td>age is not a number</td></tr>"
        in html
    )
    assert (
        "<tr><td>8</td><td>Genre</td><td><code>Robot</code></td>"
        "<td>sex must be female, male, other or unknown (or empty)</td></tr>"
    ) in html
    assert confirm_token(response) is None
    assert "Nothing can be imported from this file as it is." in html
    assert stored() == before


def test_an_invalid_upload_does_not_keep_the_file(importer, var_dir):
    upload(importer, INVALID)

    assert list((var_dir / "uploads").iterdir()) == []
    assert importer.session.get(SESSION_KEY) == []


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "contains binary data"),
        (b"", "The submitted file is empty."),
        ("customer_id,age\nMüller,30\n".encode("latin-1"), "the file is not UTF-8 text"),
        (b"name,email\nAnn,ann@example.com\n", "no recognisable customer columns"),
        (f"{MALL_HEADER}\r\n".encode(), "no customer rows; nothing to import"),
        (b'customer_id,age,income,score\n"1,2,3,4\n5,6,7,8\n', "line 2 has a quote that is never"),
    ],
    ids=["binary", "empty", "latin-1", "no columns", "only a header", "open quote"],
)
def test_an_unreadable_upload_is_a_clear_form_error(importer, bystander, var_dir, content, message):
    before = stored()

    response = upload(importer, content)

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["file"])
    assert message in response.content.decode()
    assert confirm_token(response) is None
    assert list((var_dir / "uploads").glob("*")) == []
    assert stored() == before


def test_an_upload_without_a_file_asks_for_one(importer):
    response = importer.post(IMPORT, {})

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == ["This field is required."]


def test_a_file_above_the_upload_limit_is_sent_to_the_command(importer, settings, var_dir):
    settings.IMPORT_UPLOAD_MAX_BYTES = len(VALID) - 1

    response = upload(importer, VALID)

    errors = response.context["form"].errors["file"]
    assert errors == [
        f"This file is {len(VALID)}\xa0bytes; the upload page takes files of up to "
        f"{len(VALID) - 1}\xa0bytes (about {(len(VALID) - 1) // 32:,} customers). Split it, or "
        "have an administrator run `python manage.py import_customers FILE`, which has no limit."
    ]
    assert confirm_token(response) is None
    assert not any((var_dir / "uploads").glob("*"))  # nothing kept on disk
    assert stored() == {}


def test_a_file_at_the_upload_limit_is_checked(importer, settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = len(VALID)

    assert confirm_token(upload(importer, VALID)) is not None


def test_the_form_says_how_big_a_file_may_be(importer, settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = 16 * 1024 * 1024

    assert "up to 16.0 MB." in importer.get(IMPORT).content.decode()


# --- Step 1b: columns with other names -----------------------------------------------------------

CRM_EXPORT = csv_text(
    "Client ref,Gender,Years,Income,Score", "C-1,Female,34,61.5,72", "C-2,Male,51,88,25"
).encode()
MAP = reverse("customers:import_map")


def column_choices(response) -> dict[str, str]:
    """The column (by header) each field of the column form starts with."""
    form = response.context["map_form"]
    values = {name: form[name].value() for name in form.fields}
    return {name: form.headers[int(value)] if value else "" for name, value in values.items()}


def map_columns(client, response, **choices):
    """Submit the column form shown in ``response`` with the choices (headers) changed."""
    headers = response.context["map_form"].headers
    token = re.search(r'name="token" value="([0-9a-f]+)"', response.content.decode()).group(1)
    answers = {**column_choices(response), **choices}
    positions = {f: str(headers.index(column)) if column else "" for f, column in answers.items()}
    return client.post(
        MAP, {"token": token, "filename": "crm.csv", "skip_invalid": "0", **positions}
    )


def test_fields_not_found_by_name_are_asked_for_with_the_recognised_ones_chosen(importer):
    response = upload(importer, CRM_EXPORT, name="crm.csv")

    page = response.content.decode()
    assert "Not found by name in crm.csv: Customer ID, Age." in page
    assert confirm_token(response) is None
    assert column_choices(response) == {
        "customer_id": "",
        "age": "",
        "annual_income": "Income",
        "spending_score": "Score",
        "purchase_frequency": "",
        "sex": "Gender",
    }
    assert stored() == {}


def test_the_columns_the_user_chooses_are_checked_then_imported(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    report = map_columns(importer, asked, customer_id="Client ref", age="Years")

    assert "2 data rows, 2 valid." in report.content.decode()
    assert stored() == {}  # checked, not yet written
    response = importer.post(CONFIRM, confirm_fields(report), follow=True)
    assert page_messages(response) == ["Imported 2 new and 0 changed customers (0 unchanged)."]
    assert stored()["C-1"][:5] == ("female", 34, 61.5, 72, None)


def test_a_field_the_user_leaves_out_stays_out(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    report = map_columns(importer, asked, customer_id="Client ref", age="Years", sex="")
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][0] == "unknown"  # the Gender column was not imported


def test_columns_whose_names_differ_only_in_punctuation_can_be_told_apart(importer):
    content = csv_text("Client ref,Age,Score,Score (%),Income", "C-1,40,12,88,50").encode()
    asked = upload(importer, content)

    report = map_columns(
        importer, asked, customer_id="Client ref", spending_score="Score (%)", age="Age"
    )
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][3] == 88


def test_a_confirmation_imports_with_the_columns_its_report_was_made_with(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    first = map_columns(importer, asked, customer_id="Client ref", age="Years")
    # Another tab checks the same upload with age and spending swapped (still valid values).
    map_columns(importer, asked, customer_id="Client ref", age="Score", spending_score="Years")

    importer.post(CONFIRM, confirm_fields(first))

    assert set(stored()) == {"C-1", "C-2"}
    assert stored()["C-1"][1] == 34


def test_garbled_column_choices_are_refused_and_nothing_is_written(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    fields = confirm_fields(map_columns(importer, asked, customer_id="Client ref", age="Years"))

    response = importer.post(
        CONFIRM, {**fields, "columns": '["is_staff", "", "", "", ""]'}, follow=True
    )

    assert page_messages(response) == ["The column choices were garbled; check the file again."]
    assert stored() == {}


def test_a_wrong_column_choice_can_be_made_again(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    choices = {"customer_id": "Client ref", "age": "Income", "annual_income": "Years"}
    wrong = map_columns(importer, asked, **choices)
    assert "2 data rows, 1 valid." in wrong.content.decode()  # 61.5 is no age
    assert confirm_token(wrong) is None

    fields = re.findall(r'name="(\w+)" value="([^"]*)"', wrong.content.decode())
    again = importer.post(MAP, {**{k: html.unescape(v) for k, v in fields}, "rechoose": "1"})
    assert column_choices(again)["age"] == "Income"  # the choices the report was made with
    report = map_columns(importer, again, age="Years", annual_income="Income")
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][1:4] == (34, 61.5, 72)


def test_back_to_the_column_form_after_a_failed_check_still_works(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    map_columns(importer, asked, customer_id="Client ref", age="Income")  # 61.5 is no age

    report = map_columns(importer, asked, customer_id="Client ref", age="Years")  # Back, again

    assert confirm_token(report) is not None


def choose_by_position(client, response, **positions: int):
    """Submit the column form with fields chosen by column position (0-based)."""
    token = re.search(r'name="token" value="([0-9a-f]+)"', response.content.decode()).group(1)
    form = {"token": token, "filename": "f.csv", "skip_invalid": "0"}
    return client.post(MAP, {**form, **{f: str(i) for f, i in positions.items()}})


def test_two_columns_with_the_same_name_can_be_told_apart(importer):
    content = csv_text("ID,Age,Income,Score,Score", "C-1,40,50,12,88").encode()
    asked = upload(importer, content)
    page = asked.content.decode()
    assert "Score (column 4)" in page and "Score (column 5)" in page

    report = choose_by_position(
        importer, asked, customer_id=0, age=1, annual_income=2, spending_score=4
    )
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][3] == 88


def test_a_column_without_a_name_can_be_chosen(importer):
    content = csv_text(",Years,Income,Score", "C-1,40,50,12").encode()  # a pandas index
    asked = upload(importer, content)
    assert "Column 1 (no name)" in asked.content.decode()

    report = choose_by_position(
        importer, asked, customer_id=0, age=1, annual_income=2, spending_score=3
    )
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][1] == 40


def test_one_column_cannot_hold_two_fields(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    response = map_columns(importer, asked, customer_id="Years", age="Years")

    assert response.context["map_form"].non_field_errors() == [
        "Each column can hold only one field."
    ]
    assert confirm_token(response) is None


def test_a_required_field_left_unchosen_is_asked_for_again(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    response = map_columns(importer, asked, customer_id="Client ref")

    assert response.context["map_form"].errors["age"] == ["Choose the column that holds the age."]
    assert stored() == {}


def test_the_user_s_choice_wins_over_a_column_recognised_by_name(importer):
    content = csv_text("Client ref,Age,Age at signup,Income,Score", "C-1,40,22,50,50").encode()
    asked = upload(importer, content)

    report = map_columns(importer, asked, customer_id="Client ref", age="Age at signup")
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][1] == 22


# --- Step 2: confirm ----------------------------------------------------------------------------


def test_confirm_writes_the_customers_and_says_so(importer):
    token = confirm_token(upload(importer, VALID))

    response = importer.post(CONFIRM, {"token": token, "skip_invalid": "0"}, follow=True)

    assert response.redirect_chain == [(IMPORT, 302)]
    assert page_messages(response) == [
        f"Imported {len(MALL_ROWS)} new and 0 changed customers (0 unchanged)."
    ]
    assert set(stored()) == {row.split(",")[0] for row in MALL_ROWS}
    assert stored()["0003"][:5] == ("female", 20, 16.0, 6, None)


def test_the_import_message_groups_thousands(importer):
    rows = [f"C{i:05d},Female,30,40,50" for i in range(1_200)]
    content = csv_text(MALL_HEADER, *rows).encode()

    response = importer.post(
        CONFIRM, {"token": confirm_token(upload(importer, content))}, follow=True
    )

    assert page_messages(response) == ["Imported 1,200 new and 0 changed customers (0 unchanged)."]


def test_confirm_updates_changed_customers_and_counts_them(importer, bystander):
    token = confirm_token(upload(importer, VALID))

    response = importer.post(CONFIRM, {"token": token}, follow=True)

    assert page_messages(response) == [
        f"Imported {len(MALL_ROWS) - 1} new and 1 changed customers (0 unchanged)."
    ]
    # The file has no purchases column: the stored value stays.
    assert stored()["0001"][:5] == ("male", 19, 15.0, 39, bystander.purchase_frequency)


def test_confirm_with_skip_invalid_writes_only_the_valid_rows(importer):
    response = upload(importer, INVALID, skip_invalid="on")
    assert f"Import {len(MALL_ROWS)} customers</button>" in response.content.decode()

    response = importer.post(
        CONFIRM, {"token": confirm_token(response), "skip_invalid": "1"}, follow=True
    )

    assert page_messages(response) == [
        f"Imported {len(MALL_ROWS)} new and 0 changed customers (0 unchanged, "
        "2 invalid rows skipped)."
    ]
    assert set(stored()) == {row.split(",")[0] for row in MALL_ROWS}


def test_confirm_removes_the_uploaded_file(importer, var_dir):
    token = confirm_token(upload(importer, VALID))

    importer.post(CONFIRM, {"token": token})

    assert list((var_dir / "uploads").iterdir()) == []


def test_confirming_the_same_upload_twice_imports_once(importer):
    token = confirm_token(upload(importer, VALID))
    importer.post(CONFIRM, {"token": token}, follow=True)  # reads the success message
    before = stored()

    response = importer.post(CONFIRM, {"token": token}, follow=True)

    assert page_messages(response) == [
        "That upload has expired or was already imported; upload again."
    ]
    assert stored() == before


@pytest.mark.parametrize(
    "token", ["0" * 32, "../../etc/passwd", ""], ids=["unknown", "path", "empty"]
)
def test_confirm_with_a_forged_token_is_an_error_and_writes_nothing(importer, bystander, token):
    upload(importer, VALID)  # a real pending upload must not be reachable by another token
    before = stored()

    response = importer.post(CONFIRM, {"token": token}, follow=True)

    assert page_messages(response) == [
        "That upload has expired or was already imported; upload again."
    ]
    assert stored() == before


def test_another_users_token_cannot_be_confirmed(importer, django_user_model):
    token = confirm_token(upload(importer, VALID))
    other = Client()
    other_user = django_user_model.objects.create_user("other", password="not-used")
    other_user.user_permissions.set(
        Permission.objects.filter(codename__in=["add_customer", "change_customer"])
    )
    other.force_login(other_user)

    response = other.post(CONFIRM, {"token": token}, follow=True)

    assert page_messages(response) == [
        "That upload has expired or was already imported; upload again."
    ]
    assert not Customer.objects.exists()


def test_confirm_only_accepts_post(importer):
    assert importer.get(CONFIRM).status_code == 405


def test_only_the_last_five_pending_uploads_are_kept_on_disk(importer, var_dir):
    tokens = [confirm_token(upload(importer, VALID)) for _ in range(7)]

    on_disk = {path.stem for path in (var_dir / "uploads").iterdir()}

    assert on_disk == set(tokens[-5:])
    assert importer.session[SESSION_KEY] == tokens[-5:]


def test_an_upload_left_unconfirmed_for_a_day_is_deleted(importer, var_dir):
    upload(importer, VALID)
    (abandoned,) = (var_dir / "uploads").glob("*.csv")
    a_day_ago = time.time() - 24 * 3600 - 60
    os.utime(abandoned, (a_day_ago, a_day_ago))

    upload(importer, VALID)

    assert not abandoned.exists()
    assert len(list((var_dir / "uploads").glob("*.csv"))) == 1


def test_the_whole_flow_works_with_csrf_checks_like_a_browser(django_user_model):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user_with(django_user_model, "add_customer", "change_customer"))

    def csrf(response) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())[
            1
        ]

    form = browser.get(IMPORT)
    report = browser.post(
        IMPORT, {"csrfmiddlewaretoken": csrf(form), "file": SimpleUploadedFile("c.csv", VALID)}
    )
    done = browser.post(
        CONFIRM,
        {"csrfmiddlewaretoken": csrf(report), "token": confirm_token(report)},
        follow=True,
    )

    assert report.status_code == 200
    assert done.redirect_chain == [(IMPORT, 302)]
    assert Customer.objects.count() == len(MALL_ROWS)
