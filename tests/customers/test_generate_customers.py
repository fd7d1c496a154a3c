"""generate_customers: reproducible demo customers with a real segment structure."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from customers.models import Customer
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

FEATURES = ("age", "annual_income", "spending_score", "purchase_frequency")
DATA = ("customer_id", "sex", *FEATURES)


def generate(*options: str) -> str:
    out = io.StringIO()
    call_command("generate_customers", *options, stdout=out)
    return out.getvalue()


def snapshot(*fields: str) -> list[tuple]:
    return list(Customer.objects.order_by("customer_id").values_list(*fields))


def test_the_same_seed_gives_the_same_customers():
    generate("--count", "500", "--seed", "7")
    first = snapshot(*DATA)
    Customer.objects.all().delete()

    generate("--count", "500", "--seed", "7")

    assert len(first) == 500
    assert snapshot(*DATA) == first


def test_another_seed_gives_other_customers():
    generate("--count", "500", "--seed", "7")
    first = snapshot(*DATA)

    output = generate("--count", "500", "--seed", "8")

    assert "0 created" in output
    assert snapshot("customer_id") == [row[:1] for row in first]
    assert snapshot(*DATA) != first


def test_running_it_again_neither_duplicates_nor_touches_customers():
    generate("--count", "500", "--seed", "7")
    before = snapshot(*DATA, "updated_at")

    output = generate("--count", "500", "--seed", "7")

    assert "0 created, 0 updated" in output
    assert snapshot(*DATA, "updated_at") == before


def test_if_empty_does_nothing_when_customers_exist():
    own = CustomerFactory(customer_id="MINE-1")

    output = generate("--count", "50", "--if-empty")

    assert "Customers already present; no demo data generated." in output
    assert snapshot("customer_id") == [(own.customer_id,)]


def test_if_empty_generates_into_an_empty_database():
    output = generate("--count", "50", "--if-empty")

    assert "50 created" in output
    assert Customer.objects.count() == 50


@pytest.mark.parametrize("count", ["0", "-5"])
def test_a_count_below_one_is_refused(count):
    with pytest.raises(CommandError, match="--count must be between 1 and 10,000,000"):
        generate("--count", count)

    assert not Customer.objects.exists()


def test_default_demo_customers_form_four_well_separated_segments():
    generate()
    features = np.array(snapshot(*FEATURES), dtype=float)
    assert features.shape == (5_000, 4)
    scaled = StandardScaler().fit_transform(features)

    labels = KMeans(n_clusters=4, n_init=4, random_state=0).fit_predict(scaled)

    assert silhouette_score(scaled, labels) >= 0.45
