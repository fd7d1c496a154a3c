"""API predictions held a moment and written together (operations.history)."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone

from clustering.models import TrainingRun
from clustering.tokens import api_token_create
from operations import history
from operations.models import PredictionRecord

CUSTOMER = {"age": 30, "annual_income": 80, "spending_score": 85, "purchase_frequency": 12}


@pytest.fixture
def held(settings):
    """API predictions held; the timer is set far enough off not to fire in the test (its
    thread's connection could not see the test's own, uncommitted rows)."""
    settings.PREDICTION_HISTORY_FLUSH_SECONDS = 600
    yield
    history.predictions_flush()


def api_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='CRM')[1]}")


@pytest.mark.django_db(transaction=True)
def test_api_predictions_reach_the_history_within_the_moment(trained, marketer, held, settings):
    settings.PREDICTION_HISTORY_FLUSH_SECONDS = 0.3
    client = api_client(marketer)
    before = time.monotonic()
    for age in (25, 40, 55):
        response = client.post(
            "/api/predict/", {**CUSTOMER, "age": age}, content_type="application/json"
        )
        assert response.status_code == 200

    # The answers went out before their records were written...
    assert PredictionRecord.objects.count() == 0
    # ...which the writer's own thread does a moment later, all three together.
    while PredictionRecord.objects.count() < 3 and time.monotonic() - before < 10:
        time.sleep(0.05)
    records = list(PredictionRecord.objects.order_by("created_at"))
    assert [r.inputs["age"] for r in records] == [25.0, 40.0, 55.0]
    assert {(r.channel, r.user_id, r.run_id) for r in records} == {("api", marketer.id, trained.id)}


@pytest.mark.django_db
def test_a_record_keeps_the_time_of_its_prediction_not_of_its_write(trained, marketer, held):
    api_client(marketer).post("/api/predict/", CUSTOMER, content_type="application/json")
    time.sleep(0.05)
    written_at = timezone.now()

    assert history.predictions_flush() == 1
    assert PredictionRecord.objects.get().created_at < written_at


@pytest.mark.django_db
def test_a_busy_process_writes_every_few_hundred_without_waiting(
    trained, marketer, held, monkeypatch
):
    monkeypatch.setattr(history, "PENDING_MAX", 2)
    client = api_client(marketer)
    client.post("/api/predict/", CUSTOMER, content_type="application/json")
    assert PredictionRecord.objects.count() == 0
    client.post("/api/predict/", CUSTOMER, content_type="application/json")
    assert PredictionRecord.objects.count() == 2


@pytest.mark.django_db
def test_page_predictions_are_written_at_once(trained, marketer_client, held):
    marketer_client.post("/predict/", CUSTOMER)
    assert PredictionRecord.objects.filter(channel="page").count() == 1


@pytest.mark.django_db
def test_a_run_deleted_before_the_write_leaves_its_predictions_readable(trained, marketer, held):
    """As the key's SET NULL would have done had the record been written first."""
    api_client(marketer).post("/api/predict/", CUSTOMER, content_type="application/json")
    run_id = trained.id
    TrainingRun.objects.filter(id=run_id).delete()

    assert history.predictions_flush() == 1
    record = PredictionRecord.objects.get()
    assert (record.run_id, record.run_number) == (None, run_id)
    assert record.segment_name  # the segment outlives its runs; its name is kept anyway
