"""What `make run` does with purchases: a demo history for demo customers, a first CLV fit
queued, and default retrains that keep to the customers' own features."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from clustering.models import TrainingRun
from customers.models import Customer
from purchases.models import ClvRun, Purchase

pytestmark = pytest.mark.django_db
PERSONAS = {"High-Value Customers", "Budget Shoppers", "Potential Targets", "Loyal Customers"}


def test_a_default_retrain_leaves_purchase_values_out_and_keeps_the_personas():
    call_command("generate_customers", count=800, seed=3, stdout=io.StringIO())
    call_command("generate_transactions", if_demo=True, stdout=io.StringIO())
    assert Purchase.objects.exists()

    call_command("train", sync=True, stdout=io.StringIO())

    run = TrainingRun.objects.get(is_active=True)
    assert not [f for f in run.features if f.startswith("rfm_")]
    assert set(run.clusters.values_list("segment__name", flat=True)) == PERSONAS


def test_a_retrain_on_purchase_values_names_segments_by_purchase_behaviour():
    call_command("generate_customers", count=800, seed=3, stdout=io.StringIO())
    call_command("generate_transactions", stdout=io.StringIO())

    call_command(
        "train", sync=True, features="rfm_recency,rfm_frequency,rfm_monetary", stdout=io.StringIO()
    )

    run = TrainingRun.objects.get(is_active=True)
    names = " ".join(run.clusters.values_list("segment__name", flat=True)).lower()
    assert any(word in names for word in ("recent", "lapsed", "frequent", "big spenders"))


def test_a_shop_s_own_customers_never_get_invented_purchases():
    Customer.objects.create(customer_id="C-1")
    call_command("generate_customers", count=50, seed=3, stdout=io.StringIO())

    out = io.StringIO()
    call_command("generate_transactions", if_demo=True, stdout=out)

    assert "Not only demo customers" in out.getvalue()
    assert not Purchase.objects.exists()


def test_make_run_queues_one_first_clv_fit_once_there_are_purchases(
    django_capture_on_commit_callbacks,
):
    call_command("clv", if_no_model=True, stdout=io.StringIO())
    assert not ClvRun.objects.exists()  # no purchases: nothing to fit
    call_command("generate_customers", count=200, seed=3, stdout=io.StringIO())
    call_command("generate_transactions", if_demo=True, stdout=io.StringIO())

    with django_capture_on_commit_callbacks(execute=False) as queued:
        call_command("clv", if_no_model=True, stdout=io.StringIO())
        call_command("clv", if_no_model=True, stdout=io.StringIO())

    assert ClvRun.objects.filter(status=ClvRun.Status.PENDING).count() == 1
    assert len(queued) == 1


def test_a_retrain_brings_rfm_values_up_to_date_first_and_records_how_long_it_took():
    from purchases.models import CustomerRfm

    call_command("generate_customers", count=300, seed=4, stdout=io.StringIO())
    call_command("generate_transactions", stdout=io.StringIO())
    CustomerRfm.objects.all().delete()  # as if purchases arrived without a refresh

    call_command("train", sync=True, stdout=io.StringIO())

    run = TrainingRun.objects.get(is_active=True)
    assert CustomerRfm.objects.count() == 300
    assert run.timings["rfm"] >= 0 and run.timings["rfm"] < run.timings["total"]
