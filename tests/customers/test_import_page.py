"""The upload page: upload, choose what the columns hold, read the report, confirm."""

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

from customers.models import Attribute, Customer
from customers.uploads import SESSION_KEY
from tests.customers.factories import CustomerFactory
from tests.customers.helpers import MALL_HEADER, MALL_ROWS, csv_text, stored
from tests.customers.real_files import WHOLESALE_SPEND, wholesale_file

pytestmark = pytest.mark.django_db

IMPORT = reverse("customers:import")
CONFIRM = reverse("customers:import_confirm")
VALID = csv_text(MALL_HEADER, *MALL_ROWS, newline="\r\n").encode()
INVALID = csv_text(MALL_HEADER, *MALL_ROWS, "0006,Male,abc,20,50", "0007,Robot,30,20,50").encode()
SPEND_KEYS = ("fresh", "milk", "grocery", "frozen", "detergents_paper", "delicassen")
UNDO_HINT = " It can be undone from the import history."


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
    assert f"{n} data rows, {n} valid (comma-separated)." in html
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
        (b"customer_id,age\nM\x81ller,30\n", "the file is not UTF-8 text"),
        (b"ID\nC-1\nC-2\n", "no column of the file is a customer feature"),
        (f"{MALL_HEADER}\r\n".encode(), "no customer rows; nothing to import"),
        (b'customer_id,age,income,score\n"1,2,3,4\n5,6,7,8\n', "line 2 has a quote that is never"),
    ],
    ids=["binary", "empty", "not UTF-8", "only an ID", "only a header", "open quote"],
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


# --- Step 1b: the column step --------------------------------------------------------------------

CRM_EXPORT = csv_text(
    "Client ref,Gender,Years,Income,Score", "C-1,Female,34,61.5,72", "C-2,Male,51,88,25"
).encode()
MAP = reverse("customers:import_map")


def column_choices(response) -> dict[str, str]:
    """What each column (by its name on the page) holds in the column step as shown."""
    form = response.context["map_form"]
    return {column.name: form[f"column_{i}"].value() or "" for i, column in enumerate(form.columns)}


def choose(client, response, choices=None, *, positions=None, derive=(), filename="crm.csv"):
    """Submit the column step shown in ``response``, changing the columns named in
    ``choices`` (or at the 0-based ``positions``) and filling the derived-column fields."""
    form = response.context["map_form"]
    names = [column.name for column in form.columns]
    fields = {f"column_{i}": form[f"column_{i}"].value() or "" for i in range(len(names))}
    for name, target in (choices or {}).items():
        fields[f"column_{names.index(name)}"] = target
    for index, target in (positions or {}).items():
        fields[f"column_{index}"] = target
    for row, text in enumerate(derive):
        fields[f"derive_{row}"] = text
    token = re.search(r'name="token" value="([0-9a-f]+)"', response.content.decode()).group(1)
    return client.post(MAP, {"token": token, "filename": filename, "skip_invalid": "0", **fields})


def test_columns_not_recognised_are_asked_for_with_the_recognised_ones_chosen(importer):
    response = upload(importer, CRM_EXPORT, name="crm.csv")

    page = response.content.decode()
    assert "What does each column of crm.csv hold?" in page
    assert "e.g. C-1, C-2" in page and "e.g. 34, 51" in page  # the file's first values
    assert confirm_token(response) is None
    assert column_choices(response) == {
        "Client ref": "new:categorical",
        "Gender": "sex",
        "Years": "new:numeric",
        "Income": "annual_income",
        "Score": "spending_score",
    }
    assert stored() == {}


def test_the_columns_the_user_chooses_are_checked_then_imported(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    report = choose(importer, asked, {"Client ref": "customer_id", "Years": "age"})

    assert "2 data rows, 2 valid (comma-separated)." in report.content.decode()
    assert stored() == {}  # checked, not yet written
    response = importer.post(CONFIRM, confirm_fields(report), follow=True)
    assert page_messages(response) == [
        "Imported 2 new and 0 changed customers (0 unchanged). It can be undone from the "
        "import history."
    ]
    assert stored()["C-1"][:5] == ("female", 34, 61.5, 72, None)


def test_a_field_the_user_leaves_out_stays_out(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    report = choose(importer, asked, {"Client ref": "customer_id", "Years": "age", "Gender": ""})
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][0] == "unknown"  # the Gender column was not imported


def test_without_an_id_column_the_ids_are_the_file_name_and_row_number(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    report = choose(importer, asked, {"Client ref": "", "Years": "age"})

    assert "Customer IDs from the row number, as crm-000001, crm-000002, ..." in (
        report.content.decode()
    )
    importer.post(CONFIRM, confirm_fields(report))
    assert set(stored()) == {"crm-000001", "crm-000002"}
    assert stored()["crm-000002"][:4] == ("male", 51, 88.0, 25)


def test_columns_whose_names_differ_only_in_punctuation_can_be_told_apart(importer):
    content = csv_text("Client ref,Age,Score,Score (%),Income", "C-1,40,12,88,50").encode()
    asked = upload(importer, content)
    assert page_messages(asked) == [
        "Columns 'Score' and 'Score (%)' both look like Spending score: choose the one that "
        "holds it."
    ]
    assert column_choices(asked)["Score (%)"] == ""  # the first one is the guess

    report = choose(
        importer, asked, {"Client ref": "customer_id", "Score": "", "Score (%)": "spending_score"}
    )
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][3] == 88


def test_a_confirmation_imports_with_the_columns_its_report_was_made_with(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    first = choose(importer, asked, {"Client ref": "customer_id", "Years": "age"})
    # Another tab checks the same upload with age and spending swapped (still valid values).
    choose(
        importer,
        asked,
        {"Client ref": "customer_id", "Years": "spending_score", "Score": "age"},
    )

    importer.post(CONFIRM, confirm_fields(first))

    assert set(stored()) == {"C-1", "C-2"}
    assert stored()["C-1"][1] == 34


@pytest.mark.parametrize(
    "columns",
    ['["is_staff", "", "", "", ""]', '{"targets": ["is_staff", "", "", "", ""]}', "{"],
    ids=["not choices", "unknown target", "not JSON"],
)
def test_garbled_column_choices_are_refused_and_nothing_is_written(importer, columns):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    fields = confirm_fields(choose(importer, asked, {"Client ref": "customer_id", "Years": "age"}))

    response = importer.post(CONFIRM, {**fields, "columns": columns}, follow=True)

    assert response.redirect_chain == [(IMPORT, 302)]
    assert len(page_messages(response)) == 1
    assert stored() == {}


def test_a_wrong_column_choice_can_be_made_again(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    choices = {"Client ref": "customer_id", "Income": "age", "Years": "annual_income"}
    wrong = choose(importer, asked, choices)
    assert "2 data rows, 1 valid (comma-separated)." in wrong.content.decode()  # 61.5 is no age
    assert confirm_token(wrong) is None

    fields = re.findall(r'name="(\w+)" value="([^"]*)"', wrong.content.decode())
    again = importer.post(MAP, {**{k: html.unescape(v) for k, v in fields}, "rechoose": "1"})
    assert column_choices(again)["Income"] == "age"  # the choices the report was made with
    report = choose(importer, again, {"Years": "age", "Income": "annual_income"})
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][1:4] == (34, 61.5, 72)


def test_back_to_the_column_form_after_a_failed_check_still_works(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")
    choose(importer, asked, {"Client ref": "customer_id", "Income": "age"})  # 61.5 is no age

    report = choose(importer, asked, {"Client ref": "customer_id", "Years": "age"})  # Back

    assert confirm_token(report) is not None


def test_two_columns_with_the_same_name_can_be_told_apart(importer):
    content = csv_text("ID,Age,Income,Score,Score", "C-1,40,50,12,88").encode()
    asked = upload(importer, content)
    page = asked.content.decode()
    assert "e.g. 12" in page and "e.g. 88" in page  # their values tell them apart

    report = choose(importer, asked, positions={3: "", 4: "spending_score"})
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][3] == 88


def test_a_column_without_a_name_can_be_chosen(importer):
    content = csv_text(",Years,Income,Score", "C-1,40,50,12").encode()  # a pandas index
    asked = upload(importer, content)
    assert "Column 1 (no name)" in asked.content.decode()

    report = choose(importer, asked, positions={0: "customer_id", 1: "age"})
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][1] == 40


def test_two_columns_cannot_hold_one_field(importer):
    asked = upload(importer, CRM_EXPORT, name="crm.csv")

    response = choose(
        importer, asked, {"Client ref": "customer_id", "Years": "age", "Score": "age"}
    )

    assert response.context["map_form"].errors["column_4"] == [
        "Columns “Score” and “Years” both hold Age; choose one."
    ]
    assert confirm_token(response) is None
    assert stored() == {}


def test_the_user_s_choice_wins_over_a_column_recognised_by_name(importer):
    content = csv_text("Client ref,Age,Age at signup,Income,Score", "C-1,40,22,50,50").encode()
    asked = upload(importer, content)

    report = choose(
        importer, asked, {"Client ref": "customer_id", "Age": "", "Age at signup": "age"}
    )
    importer.post(CONFIRM, confirm_fields(report))

    assert stored()["C-1"][1] == 22


DOLLARS = csv_text("ID,Income", "A,52000", "B,61000").encode()


def test_an_income_in_dollars_is_questioned_and_needs_a_tick(importer):
    asked = upload(importer, DOLLARS)
    assert column_choices(asked) == {"ID": "customer_id", "Income": "annual_income"}

    report = choose(importer, asked)
    page = report.content.decode()
    assert "so these look like dollars" in page
    assert 'name="confirmed" value="1" required' in page
    unticked = importer.post(CONFIRM, confirm_fields(report))
    assert "so these look like dollars" in unticked.content.decode()  # asked again
    assert stored() == {}

    importer.post(CONFIRM, {**confirm_fields(report), "confirmed": "1"})
    assert stored()["A"][2] == 52000.0  # the user said the values are right


def test_a_derived_column_converts_an_income_in_dollars(importer):
    asked = upload(importer, DOLLARS)

    report = choose(importer, asked, {"Income": ""}, derive=["annual_income=[Income]/1000"])
    assert "look like dollars" not in report.content.decode()
    importer.post(CONFIRM, confirm_fields(report))

    assert (stored()["A"][2], stored()["B"][2]) == (52.0, 61.0)


def test_a_derivation_that_is_not_arithmetic_is_refused_in_the_column_step(importer):
    asked = upload(importer, DOLLARS)

    response = choose(importer, asked, derive=["x=__import__('os')"])

    assert response.context["map_form"].errors["derive_0"]
    assert confirm_token(response) is None
    assert stored() == {}


# --- A real file: the wholesale customers (no ID, six spend columns) -----------------------------


def test_the_wholesale_file_is_asked_for_then_imported(importer, tmp_path):
    path = wholesale_file(tmp_path / "wholesale.csv")
    first_row = path.read_text().splitlines()[1].split(",")

    asked = upload(importer, path.read_bytes(), name="wholesale.csv")

    choices = column_choices(asked)
    assert {choices[column] for column in WHOLESALE_SPEND} == {"new:numeric"}
    page = asked.content.decode()
    for column, value in zip(WHOLESALE_SPEND, first_row[2:], strict=True):
        help_text = asked.context["map_form"][f"column_{list(choices).index(column)}"].help_text
        assert help_text.startswith(f"e.g. {value}")
        assert help_text in page
    assert stored() == {}

    report = choose(
        importer,
        asked,
        {"Channel": "new:categorical", "Region": "new:categorical"},
        filename="wholesale.csv",
    )
    page = report.content.decode()
    assert "440 data rows, 440 valid (comma-separated)." in page
    assert "Customer IDs from the row number, as wholesale-000001, wholesale-000002, ..." in page
    assert "Import 440 customers</button>" in page
    assert stored() == {}

    done = importer.post(CONFIRM, confirm_fields(report), follow=True)

    assert page_messages(done) == [
        "Imported 440 new and 0 changed customers (0 unchanged). It can be undone from the "
        "import history."
    ]
    assert Customer.objects.count() == 440
    kinds = dict(Attribute.objects.values_list("key", "kind"))
    assert kinds == {
        "channel": "categorical",
        "region": "categorical",
        **{key: "numeric" for key in SPEND_KEYS},
    }
    first = Customer.objects.get(customer_id="wholesale-000001")
    assert first.attributes["channel"] == first_row[0]
    assert [first.attributes[key] for key in SPEND_KEYS] == [int(v) for v in first_row[2:]]


# --- Step 2: confirm ----------------------------------------------------------------------------


def test_confirm_writes_the_customers_and_says_so(importer):
    token = confirm_token(upload(importer, VALID))

    response = importer.post(CONFIRM, {"token": token, "skip_invalid": "0"}, follow=True)

    assert response.redirect_chain == [(IMPORT, 302)]
    assert page_messages(response) == [
        f"Imported {len(MALL_ROWS)} new and 0 changed customers (0 unchanged).{UNDO_HINT}"
    ]
    assert set(stored()) == {row.split(",")[0] for row in MALL_ROWS}
    assert stored()["0003"][:5] == ("female", 20, 16.0, 6, None)


def test_the_import_message_groups_thousands(importer):
    rows = [f"C{i:05d},Female,30,40,50" for i in range(1_200)]
    content = csv_text(MALL_HEADER, *rows).encode()

    response = importer.post(
        CONFIRM, {"token": confirm_token(upload(importer, content))}, follow=True
    )

    assert page_messages(response) == [
        f"Imported 1,200 new and 0 changed customers (0 unchanged).{UNDO_HINT}"
    ]


def test_confirm_updates_changed_customers_and_counts_them(importer, bystander):
    report = upload(importer, VALID)
    # The only existing customer changes: more than 20 %, so the page asks first.
    asked = importer.post(CONFIRM, confirm_fields(report))
    page = asked.content.decode()
    assert "This file would change 1 of the 1 existing customers" in page
    assert "Import it anyway?" in page
    assert stored()["0001"][1] == bystander.age

    response = importer.post(CONFIRM, {**confirm_fields(asked), "confirmed": "1"}, follow=True)

    assert page_messages(response) == [
        f"Imported {len(MALL_ROWS) - 1} new and 1 changed customers (0 unchanged).{UNDO_HINT}"
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
        f"2 invalid rows skipped).{UNDO_HINT}"
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
