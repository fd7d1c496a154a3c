"""Undoing an import: the command, the service's refusals and the import history page."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from customers.models import Attribute, Customer, ImportRecord
from tests.customers.factories import CustomerFactory
from tests.customers.helpers import csv_text, values

pytestmark = pytest.mark.django_db


def export_text() -> str:
    out = io.StringIO()
    call_command("export_customers", stdout=out)
    return out.getvalue()


def undo(record_id: int) -> str:
    out = io.StringIO()
    call_command("undo_import", str(record_id), stdout=out)
    return out.getvalue()


def last_import() -> ImportRecord:
    return ImportRecord.objects.latest("id")


@pytest.fixture
def customers():
    """Ten customers, two with incomes no decimal text of 15 digits gives back exactly."""
    CustomerFactory(customer_id="A", annual_income=0.1 + 0.2, purchase_frequency=None)
    CustomerFactory(customer_id="B", annual_income=1 / 3, sex="female")
    return [CustomerFactory() for _ in range(8)]


CHANGES = csv_text(
    "ID,Income,Score,Tier",
    "A,50,,gold",  # changed; its blank score clears the stored one
    "B,60.25,77,silver",  # changed
    "NEW-1,70,10,gold",  # created
    "NEW-2,,20,",  # created, income unknown
)


def test_undo_leaves_the_export_byte_identical_to_before_the_import(
    customers, write_csv, import_customers
):
    before = export_text()
    import_customers(write_csv(CHANGES), "--attributes", "all")
    record = last_import()
    assert (record.created, record.updated) == (2, 2)
    assert Attribute.objects.filter(key="tier").exists()
    assert export_text() != before

    printed = undo(record.id)

    assert export_text() == before
    assert f"Undid import {record.id}: 2 customer(s) deleted, 2 restored." in printed
    assert not Attribute.objects.exists()  # the attribute the import created is gone
    assert not Customer.objects.filter(customer_id__startswith="NEW").exists()
    assert last_import().undone_at is not None


def test_an_import_can_be_undone_only_once(customers, write_csv, import_customers):
    import_customers(write_csv(CHANGES), "--attributes", "all")
    record = last_import()
    undo(record.id)

    with pytest.raises(CommandError, match=f"Import {record.id} was already undone."):
        undo(record.id)


def test_undo_is_refused_when_a_later_import_changed_the_same_customers(
    customers, write_csv, import_customers
):
    import_customers(write_csv(CHANGES), "--attributes", "all")
    first = last_import()
    import_customers(write_csv(csv_text("ID,Score", "B,5"), name="later.csv"), "--yes")
    second = last_import()
    before_refusal = export_text()

    with pytest.raises(CommandError) as failure:
        undo(first.id)

    assert str(failure.value) == (
        f"Import {second.id} changed some of the same customers after import {first.id}; "
        f"undo import {second.id} first."
    )
    assert export_text() == before_refusal  # nothing restored, nothing deleted
    assert values("B")[3] == 5


def test_undoing_the_later_import_first_lets_the_earlier_one_be_undone(
    customers, write_csv, import_customers
):
    before = export_text()
    import_customers(write_csv(CHANGES), "--attributes", "all")
    first = last_import()
    import_customers(write_csv(csv_text("ID,Score", "B,5"), name="later.csv"), "--yes")

    undo(last_import().id)
    undo(first.id)

    assert export_text() == before


def test_a_later_import_of_other_customers_does_not_block_undo(
    customers, write_csv, import_customers
):
    before = export_text()
    import_customers(write_csv(CHANGES), "--attributes", "all")
    first = last_import()
    import_customers(write_csv(csv_text("ID,Score", "OTHER,5"), name="other.csv"))

    undo(first.id)

    assert export_text() == before + "OTHER,,,5,,unknown\r\n"


def test_undo_of_an_import_that_does_not_exist_is_a_clear_error(db):
    with pytest.raises(CommandError, match="There is no import 999."):
        undo(999)


def test_undo_import_without_an_id_lists_the_recent_imports(customers, write_csv, import_customers):
    import_customers(write_csv(CHANGES, name="march.csv"), "--attributes", "all")

    out = io.StringIO()
    call_command("undo_import", stdout=out)

    assert "march.csv  2 created, 2 updated" in out.getvalue()


# --- The import history page --------------------------------------------------------------------


@pytest.fixture
def importer(client, manager):
    """A marketing manager: imports customers and may undo an import."""
    client.force_login(manager)
    return client


def test_undo_needs_its_own_permission(customers, write_csv, import_customers, client, make_user):
    import_customers(write_csv(CHANGES), "--attributes", "all")
    record = last_import()
    clerk = make_user("clerk", perms=("customers.add_customer", "customers.change_customer"))
    client.force_login(clerk)

    page = client.get(reverse("customers:import_history")).content.decode()
    response = client.post(reverse("customers:import_undo", args=[record.id]))

    assert reverse("customers:import_undo", args=[record.id]) not in page
    assert response.status_code == 403
    assert ImportRecord.objects.get(id=record.id).undone_at is None


def test_the_history_page_lists_an_import_and_undoes_it(
    customers, write_csv, import_customers, importer
):
    before = export_text()
    import_customers(write_csv(CHANGES, name="march.csv"), "--attributes", "all")
    record = last_import()

    page = importer.get(reverse("customers:import_history")).content.decode()
    assert "march.csv" in page
    assert reverse("customers:import_undo", args=[record.id]) in page

    response = importer.post(reverse("customers:import_undo", args=[record.id]), follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        f"Undid import {record.id} of {record.file_name}: 2 customers removed, 2 restored."
    ]
    assert export_text() == before
    assert "undone" in response.content.decode()


def test_the_history_page_says_why_an_undo_is_refused(
    customers, write_csv, import_customers, importer
):
    import_customers(write_csv(CHANGES), "--attributes", "all")
    first = last_import()
    import_customers(write_csv(csv_text("ID,Score", "A,5"), name="later.csv"), "--yes")

    response = importer.post(reverse("customers:import_undo", args=[first.id]), follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        f"Import {last_import().id} changed some of the same customers after import "
        f"{first.id}; undo import {last_import().id} first."
    ]
    assert Customer.objects.filter(customer_id="NEW-1").exists()


def test_an_import_works_when_sql_is_logged_as_under_make_run(
    customers, write_csv, import_customers
):
    """`make run` serves with DEBUG on, where Django logs each query by formatting it with
    its parameters: a bare '%' in the undo snapshot's SQL made every import a 500 there."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection):
        import_customers(write_csv(CHANGES), "--attributes", "all")
    record = last_import()
    assert (record.created, record.updated) == (2, 2)
    undo(record.id)
    assert values("A")[2] == pytest.approx(0.1 + 0.2)
