"""The customer admin: range checks in the database and the form, filters and search."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.urls import reverse

from clustering.models import ClusterAssignment
from customers.models import Customer
from tests.clustering.helpers import make_customers, train
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

OUT_OF_RANGE = {
    "spending score 0": ("spending_score", 0),
    "spending score 101": ("spending_score", 101),
    "age 15": ("age", 15),
    "age 111": ("age", 111),
    "negative income": ("annual_income", -0.5),
    "income above 100,000k": ("annual_income", 100_000.5),
    "purchase frequency 10,001": ("purchase_frequency", 10_001),
    "unknown sex": ("sex", "robot"),
}


@pytest.mark.parametrize("field, value", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_database_refuses_a_new_customer_with_an_out_of_range_value(field, value):
    customer = CustomerFactory.build(**{field: value})

    with pytest.raises(IntegrityError), transaction.atomic():
        customer.save()

    assert not Customer.objects.exists()


@pytest.mark.parametrize("field, value", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_database_refuses_to_change_a_customer_to_an_out_of_range_value(field, value):
    customer = CustomerFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.filter(pk=customer.pk).update(**{field: value})

    assert getattr(Customer.objects.get(pk=customer.pk), field) == getattr(customer, field)


@pytest.mark.parametrize(
    "values",
    [
        {"age": 16, "spending_score": 1, "annual_income": 0, "purchase_frequency": 0},
        {"age": 110, "spending_score": 100, "annual_income": 100_000, "purchase_frequency": 10_000},
    ],
    ids=["lowest", "highest"],
)
def test_database_accepts_the_ends_of_every_range(values):
    customer = CustomerFactory(**values)

    stored = Customer.objects.filter(pk=customer.pk).values(*values).get()
    assert stored == values


def change_form_data(customer: Customer, **changes) -> dict:
    data = {
        "customer_id": customer.customer_id,
        "sex": customer.sex,
        "age": customer.age,
        "annual_income": customer.annual_income,
        "spending_score": customer.spending_score,
        "purchase_frequency": customer.purchase_frequency or "",
    }
    return {**data, **changes}


ADMIN_FORM_ERRORS = {
    "spending score 101": ("spending_score", 101, "less than or equal to 100"),
    "spending score 0": ("spending_score", 0, "greater than or equal to 1"),
    "age 12": ("age", 12, "greater than or equal to 16"),
    "income above 100,000k": ("annual_income", 250_000, "less than or equal to 100000"),
}


@pytest.mark.parametrize(
    "field, value, message", ADMIN_FORM_ERRORS.values(), ids=ADMIN_FORM_ERRORS.keys()
)
def test_admin_change_form_shows_the_range_and_does_not_save(admin_client, field, value, message):
    customer = CustomerFactory(spending_score=50, age=40, annual_income=60)
    url = reverse("admin:customers_customer_change", args=[customer.pk])

    response = admin_client.post(url, change_form_data(customer, **{field: value}))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert message in response.content.decode()
    assert getattr(Customer.objects.get(pk=customer.pk), field) == getattr(customer, field)


def test_admin_change_form_saves_a_valid_change(admin_client):
    customer = CustomerFactory(spending_score=50)
    url = reverse("admin:customers_customer_change", args=[customer.pk])

    response = admin_client.post(url, change_form_data(customer, spending_score=77))

    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).spending_score == 77


# --- The change list ----------------------------------------------------------------------------

CHANGELIST = "admin:customers_customer_changelist"


@pytest.fixture
def population():
    rows = [
        ("0012", "female", 19, 12.0),
        ("0120", "male", 24, 30.0),
        ("1200", "female", 25, 59.5),
        ("0013", "other", 49, 60.0),
        ("2000", "male", 65, 140.0),
    ]
    return [
        CustomerFactory(customer_id=cid, sex=sex, age=age, annual_income=income)
        for cid, sex, age, income in rows
    ]


def listed(admin_client, **params) -> set[str]:
    response = admin_client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return {c.customer_id for c in response.context["cl"].queryset}


def test_changelist_loads_with_sex_age_band_and_income_band_filters(admin_client, population):
    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    titles = [str(spec.title) for spec in response.context["cl"].filter_specs]
    assert titles == ["sex", "age band", "income band"]
    assert all(c.customer_id in response.content.decode() for c in population)


def test_changelist_needs_a_staff_account(client, django_user_model, population):
    user = django_user_model.objects.create_user("clerk", password="pw-not-used-elsewhere")
    client.force_login(user)

    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_filter_by_sex(admin_client, population):
    assert listed(admin_client, sex="female") == {
        c.customer_id for c in population if c.sex == "female"
    }


@pytest.mark.parametrize(
    "band, low, high",
    [("u25", 0, 25), ("25-34", 25, 35), ("35-49", 35, 50), ("65+", 65, 200)],
)
def test_filter_by_age_band(admin_client, population, band, low, high):
    assert listed(admin_client, age_band=band) == {
        c.customer_id for c in population if low <= c.age < high
    }


@pytest.mark.parametrize(
    "band, low, high", [("u30", 0, 30), ("30-60", 30, 60), ("60-100", 60, 100), ("100+", 100, 1e9)]
)
def test_filter_by_income_band(admin_client, population, band, low, high):
    assert listed(admin_client, income_band=band) == {
        c.customer_id for c in population if low <= c.annual_income < high
    }


@pytest.mark.parametrize("query", ["0012", "001", "12", "2000"])
def test_search_by_customer_id_finds_the_ids_starting_with_it(admin_client, population, query):
    assert listed(admin_client, q=query) == {
        c.customer_id for c in population if c.customer_id.startswith(query)
    }


def test_changelist_links_to_the_import_page(admin_client):
    response = admin_client.get(reverse(CHANGELIST))

    assert f'<a href="{reverse("customers:import")}">Import CSV</a>' in response.content.decode()


def test_changelist_hides_the_import_link_from_staff_who_may_only_view(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="not-used", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_customer"))
    client.force_login(user)

    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert reverse("customers:import") not in response.content.decode()


# --- Natural order and the current segment ------------------------------------------------------

ID_CELL = re.compile(r'class="field-customer"><a [^>]*>([^<]+)</a>')


def ids_listed(admin_client, **params) -> list[str]:
    response = admin_client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return ID_CELL.findall(response.content.decode())


def test_the_customer_list_sorts_ids_as_numbers_within_their_prefix(admin_client):
    for customer_id in ["C-10", "C-9", "C-100", "B-2", "C-1", "7", "12"]:
        CustomerFactory(customer_id=customer_id)

    assert ids_listed(admin_client) == ["7", "12", "B-2", "C-1", "C-9", "C-10", "C-100"]
    # The ID column's header sorts the same way, either direction (column 1: 0 is the tick box).
    assert ids_listed(admin_client, o="-1") == ["C-100", "C-10", "C-9", "C-1", "B-2", "12", "7"]


def test_the_customer_list_and_form_show_each_customer_s_current_segment(admin_client):
    make_customers(400, seed=7)
    run = train()
    member = ClusterAssignment.objects.filter(run=run).select_related("cluster__segment").first()
    outsider = CustomerFactory(customer_id="ZZ-NEW")  # came after the training

    page = admin_client.get(reverse(CHANGELIST), {"q": member.customer.customer_id})
    form = admin_client.get(reverse("admin:customers_customer_change", args=[outsider.pk]))

    assert re.search(
        rf'<td class="field-segment">{re.escape(member.cluster.segment.name)}</td>',
        page.content.decode(),
    )
    assert "in no segment" in form.content.decode()
