"""export_customers and the admin export action write the format the importer reads."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from customers.models import Attribute, Customer
from customers.services import export_columns
from tests.customers.factories import CustomerFactory
from tests.customers.helpers import stored

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers():
    return [
        CustomerFactory(customer_id="0001", purchase_frequency=None, annual_income=15.0),
        CustomerFactory(customer_id="0002", annual_income=75.5, sex=Customer.Sex.UNKNOWN),
        CustomerFactory(customer_id="00003", annual_income=0.1 + 0.2, age=110, spending_score=1),
        CustomerFactory(customer_id='Ünïcode, "quoted"', purchase_frequency=0),
    ]


def export_text() -> str:
    out = io.StringIO()
    call_command("export_customers", stdout=out)
    return out.getvalue()


def exported_rows() -> dict[str, dict[str, str]]:
    return {row["customer_id"]: row for row in csv.DictReader(io.StringIO(export_text()))}


BUILT_IN_COLUMNS = [
    "customer_id",
    "age",
    "annual_income",
    "spending_score",
    "purchase_frequency",
    "sex",
]


def test_export_header_is_the_import_format(customers):
    header = next(csv.reader(io.StringIO(export_text())))

    assert header == BUILT_IN_COLUMNS == list(export_columns())


def test_attributes_are_exported_after_the_built_in_fields(customers):
    Attribute.objects.create(key="region", label="Region", kind="categorical")
    Attribute.objects.create(key="fresh", label="Fresh", whole=True)
    Customer.objects.filter(customer_id="0001").update(attributes={"region": "3", "fresh": 9831})

    rows = exported_rows()

    assert next(csv.reader(io.StringIO(export_text()))) == [*BUILT_IN_COLUMNS, "region", "fresh"]
    assert (rows["0001"]["region"], rows["0001"]["fresh"]) == ("3", "9831")
    assert (rows["0002"]["region"], rows["0002"]["fresh"]) == ("", "")  # unknown stays blank


def test_export_writes_one_row_per_customer(customers):
    assert set(exported_rows()) == {c.customer_id for c in customers}


def test_export_keeps_leading_zeros(customers):
    assert {"0001", "0002", "00003"} <= set(exported_rows())


def test_export_leaves_an_unknown_purchase_frequency_empty(customers):
    assert exported_rows()["0001"]["purchase_frequency"] == ""


def test_exported_file_reimports_with_no_changes(customers, tmp_path, import_customers):
    path = tmp_path / "export.csv"
    call_command("export_customers", "--output", str(path))
    before = stored()

    result = import_customers(path)

    assert f"0 created, 0 updated, {len(customers)} unchanged" in result.stdout
    assert stored() == before


def test_exported_file_recreates_the_same_customers_in_an_empty_database(
    customers, tmp_path, import_customers
):
    path = tmp_path / "export.csv"
    call_command("export_customers", "--output", str(path))
    before = {cid: v[:5] for cid, v in stored().items()}
    Customer.objects.all().delete()

    import_customers(path)

    assert {cid: v[:5] for cid, v in stored().items()} == before


def test_export_to_a_file_and_to_standard_output_are_the_same(customers, tmp_path):
    path = tmp_path / "export.csv"
    call_command("export_customers", "--output", str(path))

    assert path.read_bytes().decode("utf-8") == export_text()


# --- The admin action ---------------------------------------------------------------------------


def test_admin_export_action_streams_only_the_selected_customers(admin_client, customers):
    selected = customers[1:3]

    response = admin_client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "export_selected", "_selected_action": [c.pk for c in selected]},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["customer_id"] for row in rows] == [c.customer_id for c in selected]
