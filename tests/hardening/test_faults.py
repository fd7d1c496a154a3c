"""Real failures: the broker down, the worker killed mid-training, the database refusing a
write. In each, the failed retrain is marked failed and the previous model keeps serving."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from django.conf import settings as live_settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from clustering import services
from clustering.model_store import storage_dir
from clustering.models import Cluster, ClusterAssignment, Segment, TrainingRun
from clustering.prediction import predict_one
from clustering.services import (
    TrainingParams,
    training_run_claim,
    training_run_execute,
    training_run_start,
    training_runs_reap,
)
from tests.conftest import require_broker
from tests.hardening.conftest import train

CUSTOMER = {"age": 30, "annual_income": 60, "spending_score": 50, "purchase_frequency": 20}
FORM = {**{k: str(v) for k, v in CUSTOMER.items()}, "sex": "female"}
RETRAIN = {
    "mode": "auto",
    "k_min": "2",
    "k_max": "10",
    "features": list(CUSTOMER),
    "missing": "exclude",
    "log_mode": "auto",
}


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generate(count: int, seed: int = 5) -> None:
    call_command("generate_customers", count=count, seed=seed, stdout=io.StringIO())


# --- The broker is down ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_retrain_fails_at_once_and_the_site_keeps_working(
    manager, broker_at
):
    generate(300)
    active = train()
    broker_at(f"redis://127.0.0.1:{closed_port()}/0")
    client = Client()
    client.force_login(manager)

    started = time.monotonic()
    response = client.post("/runs/start/", RETRAIN, headers={"HX-Request": "true"})
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed < 10, f"the retrain request took {elapsed:.1f} s"
    html = response.content.decode()
    assert 'id="retrain-panel"' in html and "<html" not in html
    assert "The training queue is unavailable" in html
    run = TrainingRun.objects.exclude(id=active.id).get()
    assert run.status == TrainingRun.Status.FAILED
    assert run.in_flight is None
    active.refresh_from_db()
    assert active.is_active

    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "The training queue is unavailable" in dashboard.content.decode()
    prediction = client.post("/predict/", FORM, headers={"HX-Request": "true"})
    assert prediction.status_code == 200
    assert f"From run {active.id}." in prediction.content.decode()

    # The failed run does not hold the one-training-at-a-time slot: a second try is new.
    client.post("/runs/start/", RETRAIN, headers={"HX-Request": "true"})
    assert TrainingRun.objects.filter(status=TrainingRun.Status.FAILED).count() == 2


# --- The worker is killed ----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (command) state ppid ...": the command may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def kill_worker(process) -> list[int]:
    """SIGKILL the worker and its pool processes, as the OOM killer or a lost machine would.

    The main process is frozen first so that it cannot start a new pool process.
    """
    os.kill(process.pid, signal.SIGSTOP)
    pool = _children(process.pid)
    for pid in pool:
        os.kill(pid, signal.SIGKILL)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    process.log_file.close()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pool):
        assert time.monotonic() < deadline, "a pool process survived SIGKILL"
        time.sleep(0.1)
    return pool


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def forget_unacked_delivery(run_id: int) -> int:
    """Drop the killed worker's unacknowledged delivery of ``run_id`` from Redis.

    Redis keeps it for the visibility timeout (an hour) and then hands it to a worker again:
    harmless here (the run is failed, so it cannot be claimed), but a later test session on
    the same Redis could have a pending run with that id by then.
    """
    if not live_settings.REDIS_URL:
        return 0  # the filesystem broker removes a message when it delivers it
    import redis

    client = redis.Redis.from_url(live_settings.REDIS_URL)
    dropped = 0
    for tag, payload in client.hscan_iter("unacked"):
        headers = json.loads(payload)[0].get("headers") or {}
        if headers.get("task") == "clustering.tasks.train_task" and headers.get("argsrepr") == (
            f"({run_id},)"
        ):
            client.zrem("unacked_index", tag)
            client.hdel("unacked", tag)
            dropped += 1
    return dropped


@pytest.fixture
def workers(transactional_db, monkeypatch, tmp_path):
    """workers() starts a real Celery worker that beats every 0.5 s; all are stopped after."""
    from tests.worker import start_worker, stop_worker

    require_broker()
    monkeypatch.setenv("CLUSTERING_HEARTBEAT_SECONDS", "0.5")
    started = []

    def start():
        process = start_worker(tmp_path / f"worker-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            stop_worker(process)


def wait_until(run: TrainingRun, condition, what: str, timeout: float = 90) -> TrainingRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if condition(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run.id} never {what}: {run.status}, {run.progress} %, {run.step}")


def test_a_worker_killed_mid_training_fails_its_run_and_a_new_worker_retrains(
    workers, manager, settings
):
    generate(600)
    previous = train(k=4)
    generate(40_000)  # a sweep over K = 2..20 on these takes long enough to be interrupted
    worker = workers()

    run = training_run_start(params=TrainingParams(k_min=2, k_max=20))
    run = wait_until(
        run, lambda r: r.status == TrainingRun.Status.RUNNING and r.progress >= 12, "ran"
    )

    # While the worker lives, its heartbeat keeps the run alive past the timeout.
    settings.CLUSTERING_HEARTBEAT_TIMEOUT = 3
    time.sleep(4)
    assert training_runs_reap() == 0
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING, worker.log_path.read_text()[-2000:]

    assert kill_worker(worker), "the worker had no pool process"
    forget_unacked_delivery(run.id)
    time.sleep(4)
    client = Client()
    client.force_login(manager)
    dashboard = client.get("/")  # the dashboard reaps silent runs

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "stopped responding" in run.error
    assert run.in_flight is None
    assert "stopped responding" in dashboard.content.decode()
    previous.refresh_from_db()
    assert previous.is_active
    assert predict_one(CUSTOMER).run_id == previous.id

    workers()
    retrain = wait_until(
        training_run_start(params=TrainingParams(k=4)), lambda r: r.is_finished, "finished"
    )
    assert retrain.status == TrainingRun.Status.SUCCEEDED, retrain.error
    assert retrain.is_active
    assert retrain.customers_used == 40_000


# --- The database refuses a write --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_database_error_while_assignments_are_written_leaves_the_previous_model(monkeypatch):
    generate(1_200)
    previous = train(k=3)
    segments_before = set(Segment.objects.values_list("id", "name", "is_active"))
    assignments_before = ClusterAssignment.objects.count()
    files_before = set(os.listdir(storage_dir()))
    table = ClusterAssignment._meta.db_table
    written = []
    write_chunk = services.assignments_write_chunk

    def chunk_then_duplicate(cursor, run_id, customer_pks, cluster_ids, confidence, unusual):
        """Write the chunk; after half of them, insert an assignment the database refuses."""
        write_chunk(cursor, run_id, customer_pks, cluster_ids, confidence, unusual)
        written.append((int(customer_pks[0]), int(cluster_ids[0])))
        if len(written) == 6:
            customer, cluster = written[0]  # (run, customer) is the primary key
            cursor.execute(
                f"INSERT INTO {table} (run_id, customer_id, cluster_id, confidence, unusual) "
                "VALUES (%s, %s, %s, %s, %s)",
                [run_id, customer, cluster, 0.5, False],
            )

    monkeypatch.setattr(services, "ASSIGNMENT_CHUNK", 100)  # 12 chunks
    monkeypatch.setattr(services, "assignments_write_chunk", chunk_then_duplicate)

    run = training_run_start(params=TrainingParams(k=6), enqueue=False)
    assert training_run_claim(run_id=run.id)
    run = training_run_execute(run_id=run.id)

    assert len(written) == 6, "the failure did not happen half-way through the assignments"
    assert run.status == TrainingRun.Status.FAILED
    assert "IntegrityError" in run.error and "previous model is still active" in run.error
    assert not run.is_active and run.in_flight is None
    assert not Cluster.objects.filter(run_id=run.id).exists()
    assert not ClusterAssignment.objects.filter(run_id=run.id).exists()
    assert ClusterAssignment.objects.count() == assignments_before
    assert set(Segment.objects.values_list("id", "name", "is_active")) == segments_before
    assert set(os.listdir(storage_dir())) == files_before  # the new model file was removed
    previous.refresh_from_db()
    assert previous.is_active
    assert predict_one(CUSTOMER).run_id == previous.id
    with connection.cursor() as cursor:  # the connection is usable after the error
        cursor.execute("SELECT 1")
