"""Many people at once: simultaneous retrain requests, and predictions while the active
model changes under them."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client

from clustering.models import Cluster, TrainingRun
from clustering.prediction import predict_one
from clustering.services import run_activate
from clustering.tokens import api_token_create
from tests.hardening.conftest import bearer, train

pytestmark = pytest.mark.django_db(transaction=True)

FEATURES = ["age", "annual_income", "spending_score", "purchase_frequency"]
RETRAIN = {
    "mode": "auto",
    "k_min": "2",
    "k_max": "10",
    "features": FEATURES,
    "missing": "exclude",
    "log_mode": "auto",
}


def in_threads(count: int, work: Callable[[int], object]) -> list:
    """Run work(i) in ``count`` threads released together; each closes its connections."""
    barrier = threading.Barrier(count)

    def run(i: int):
        try:
            barrier.wait(timeout=30)
            return work(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_simultaneous_retrain_requests_start_one_run(manager, broker_at):
    broker_at("memory://")  # the one queued task goes nowhere
    clients = []
    for _ in range(20):
        client = Client()
        client.force_login(manager)
        clients.append(client)

    responses = in_threads(20, lambda i: clients[i].post("/runs/start/", RETRAIN))

    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.PENDING
    assert [r.status_code for r in responses] == [302] * 20
    assert {r.url for r in responses} == {f"/runs/{run.id}/"}


CUSTOMERS = [
    {"age": 30, "annual_income": 60, "spending_score": 50, "purchase_frequency": 20},
    {"age": 45, "annual_income": 120, "spending_score": 85, "purchase_frequency": 30},
    {"age": 25, "annual_income": 25, "spending_score": 20, "purchase_frequency": 8},
    {"age": 55, "annual_income": 100, "spending_score": 20, "purchase_frequency": 5},
]


def test_predictions_during_activations_each_come_from_exactly_one_run(settings, marketer):
    settings.PREDICTION_CACHE_SECONDS = 0  # every prediction reads the active run again
    call_command("generate_customers", count=1_500, seed=11, stdout=io.StringIO())
    run_a, run_b = train(k=3), train(k=6)
    run_activate(run_id=run_a.id)
    segments_of = {
        run.id: set(Cluster.objects.filter(run=run).values_list("segment_id", flat=True))
        for run in (run_a, run_b)
    }
    assert segments_of[run_a.id] != segments_of[run_b.id]
    secret = api_token_create(user=marketer, name="load")[1]
    stop = threading.Event()

    def predict_in_process(i: int) -> list[tuple[int, set[int]]]:
        answers = []
        while not stop.is_set() or len(answers) < 5:
            prediction = predict_one(CUSTOMERS[i % len(CUSTOMERS)])
            answers.append((prediction.run_id, {prediction.segment.id, prediction.runner_up.id}))
        return answers

    def predict_through_the_api(i: int) -> list[tuple[int, set[int]]]:
        client, answers = Client(), []
        while not stop.is_set() or len(answers) < 5:
            response = client.post(
                "/api/predict/",
                json.dumps({"customers": CUSTOMERS}),
                content_type="application/json",
                headers=bearer(secret),
            )
            assert response.status_code == 200, response.content[:300]
            body = response.json()
            ids = {p[key]["id"] for p in body["predictions"] for key in ("segment", "runner_up")}
            answers.append((body["run_id"], ids))
        return answers

    def work(i: int):
        if i == 4:  # the activating thread
            try:
                for _ in range(10):
                    for run in (run_b, run_a):
                        run_activate(run_id=run.id)
                        time.sleep(0.02)  # let predictions see each state
            finally:
                stop.set()
            return []
        return (predict_in_process if i % 2 else predict_through_the_api)(i)

    results = in_threads(5, work)

    answers = [answer for per_thread in results for answer in per_thread]
    assert len(answers) >= 20
    for run_id, segment_ids in answers:
        assert segment_ids <= segments_of[run_id], (run_id, segment_ids)
    # Both models answered: the activations really happened under the predictions.
    assert {run_id for run_id, _ in answers} == {run_a.id, run_b.id}
    assert TrainingRun.objects.get(is_active=True) == run_a
