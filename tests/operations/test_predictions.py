"""Prediction history: stored from the page and the API, browsed, exported, pruned."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from clustering.tokens import api_token_create
from operations.history import predictions_prune
from operations.models import PredictionRecord

pytestmark = pytest.mark.django_db

CUSTOMER = {"age": 30, "annual_income": 80, "spending_score": 85, "purchase_frequency": 12}


def test_a_prediction_on_the_page_is_stored(trained, marketer, marketer_client):
    response = marketer_client.post("/predict/", CUSTOMER)
    assert response.status_code == 200
    record = PredictionRecord.objects.get()
    assert (record.channel, record.user, record.run_id) == ("page", marketer, trained.id)
    assert record.inputs == {key: float(value) for key, value in CUSTOMER.items()}
    assert record.segment_name in response.content.decode()
    assert 0 < record.confidence <= 1


def test_an_invalid_form_stores_nothing(trained, marketer_client):
    marketer_client.post("/predict/", {**CUSTOMER, "age": "old"})
    assert not PredictionRecord.objects.exists()


def test_predictions_through_the_api_are_stored_with_the_customer(trained, marketer):
    token = api_token_create(user=marketer, name="CRM")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    batch = {"customers": [{**CUSTOMER, "customer_id": "C-1"}, CUSTOMER]}
    response = client.post("/api/predict/", batch, content_type="application/json")
    assert response.status_code == 200, response.content
    records = list(PredictionRecord.objects.order_by("id"))
    assert [(r.channel, r.customer_ref, r.user) for r in records] == [
        ("api", "C-1", marketer),
        ("api", "", marketer),
    ]
    answers = response.json()["predictions"]
    assert [r.segment_name for r in records] == [a["segment"]["name"] for a in answers]


def test_predictions_are_pruned_after_the_retention_period(trained, marketer_client, settings):
    settings.PREDICTION_HISTORY_DAYS = 30
    marketer_client.post("/predict/", CUSTOMER)
    marketer_client.post("/predict/", CUSTOMER)
    old = PredictionRecord.objects.first()
    PredictionRecord.objects.filter(id=old.id).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    assert predictions_prune() == 1
    assert list(PredictionRecord.objects.values_list("id", flat=True)) != [old.id]
    assert PredictionRecord.objects.count() == 1


def test_a_marketer_finds_their_own_predictions_of_yesterday(
    trained, marketer_client, manager_client
):
    marketer_client.post("/predict/", CUSTOMER)
    manager_client.post("/predict/", {**CUSTOMER, "age": 60})
    PredictionRecord.objects.update(created_at=timezone.now() - timedelta(days=1))
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    page = marketer_client.get(f"/operations/predictions/?since={yesterday}").content.decode()
    assert "(1 predictions)" in page and "mia" in page and "max" not in page
    everyone = manager_client.get(f"/operations/predictions/?since={yesterday}")
    assert "(2 predictions)" in everyone.content.decode()


def test_a_bad_date_filter_says_which_field(trained, manager_client):
    response = manager_client.get("/operations/predictions/?since=yesterday")
    assert response.status_code == 200
    assert "“yesterday” in From is not a date" in response.content.decode()


def test_the_csv_export_guards_against_formulas(trained, manager, manager_client):
    token = api_token_create(user=manager, name="CRM")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.post(
        "/api/predict/",
        {**CUSTOMER, "customer_id": "=HYPERLINK(1)"},
        content_type="application/json",
    )
    response = manager_client.get("/operations/predictions.csv?channel=api")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["when", "channel", "user", "run", "segment"]
    assert rows[1][7] == "'=HYPERLINK(1)"
    assert rows[1][1] == "api" and rows[1][2] == "max"


def test_marketers_cannot_export_everyones_predictions(marketer_client):
    assert marketer_client.get("/operations/predictions.csv").status_code == 403


def test_the_customer_page_shows_segment_history_and_predictions(
    trained, marketer, marketer_client
):
    from clustering.models import ClusterAssignment

    assignment = ClusterAssignment.objects.filter(run=trained).select_related("customer").first()
    customer = assignment.customer
    token = api_token_create(user=marketer, name="CRM")[1]
    Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        "/api/predict/", {**CUSTOMER, "customer_id": customer.customer_id},
        content_type="application/json",
    )  # fmt: skip
    page = marketer_client.get(f"/customers/{customer.pk}/").content.decode()
    assert f"Customer {customer.customer_id}" in page
    assert f"run {trained.id}</a>" in page
    assert "Predictions for this customer" in page and "API" in page
    members = marketer_client.get(f"/segments/{assignment.cluster.segment_id}/").content.decode()
    assert f'href="/customers/{customer.pk}/"' in members


def test_a_customers_moves_skip_the_candidates_of_the_same_compare_retrain(marketer_client):
    """A compare retrain stores each algorithm as a run; the customer page must not say the
    customer "moved" between two candidates of one retrain (none of them came before the
    other), only from the run before that retrain."""
    from clustering.models import Cluster, ClusterAssignment, Segment, TrainingRun
    from customers.models import Customer

    customer = Customer.objects.create(customer_id="C-1", age=30, annual_income=50)
    names = ("Budget Shoppers", "Loyal Customers", "High age and frequency")
    segments = {name: Segment.objects.create(name=name) for name in names}
    now = timezone.now()

    def run_with(name, minutes, **fields):
        run = TrainingRun.objects.create(
            status=TrainingRun.Status.SUCCEEDED, in_flight=None,
            finished_at=now + timedelta(minutes=minutes),
            **fields,
        )  # fmt: skip
        cluster = Cluster.objects.create(
            run=run, index=0, segment=segments[name], archetype="a", reason="r",
            centroid={}, centroid_sd={}, size=1, share=1.0,
        )  # fmt: skip
        ClusterAssignment.objects.create(run=run, customer=customer, cluster=cluster, confidence=1)
        return run

    run_with("Budget Shoppers", 0)
    recommended = run_with("Loyal Customers", 10, is_active=True)
    run_with("High age and frequency", 5, comparison_of=recommended)  # a candidate

    page = marketer_client.get(f"/customers/{customer.pk}/").content.decode()

    assert "moved from Budget Shoppers" in page
    assert "moved from High age and frequency" not in page
