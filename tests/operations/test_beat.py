"""A schedule fires through a real Celery beat and worker (Redis in CI), and its
activation rule decides both ways."""

from __future__ import annotations

import time

import pytest

from clustering.models import TrainingRun
from operations.models import Schedule, ScheduledRun
from operations.schedules import schedule_save
from tests.clustering.helpers import make_customers, train
from tests.conftest import require_broker

pytestmark = pytest.mark.services


def wait_for_scheduled_run(schedule: Schedule, outcome: str, log, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link = (
            ScheduledRun.objects.filter(schedule=schedule, outcome=outcome)
            .select_related("run")
            .first()
        )
        if link is not None:
            return link
        time.sleep(0.5)
    found = list(ScheduledRun.objects.values_list("outcome", "run__status", "detail"))
    raise AssertionError(f"no {outcome} run within {timeout} s: {found}\n{log.read_text()[-3000:]}")


def test_a_schedule_fires_through_beat_and_its_rule_decides_both_ways(transactional_db, tmp_path):
    make_customers(400, seed=7)
    active = train(k=4)
    # The active run claims a silhouette no refit reaches: "not worse" must keep it.
    TrainingRun.objects.filter(id=active.id).update(silhouette=0.99)
    schedule = schedule_save(
        schedule=Schedule(
            name="Every few seconds",
            kind=Schedule.Kind.INTERVAL,
            interval_seconds=3,
            activation=Schedule.Activation.NOT_WORSE,
            k=4,
        )
    )
    from tests.worker import start_worker_with_beat, stop_worker

    require_broker()
    log = tmp_path / "worker.log"
    worker = start_worker_with_beat(log)
    try:
        waiting = wait_for_scheduled_run(schedule, ScheduledRun.Outcome.WAITING, log)
        assert waiting.run.status == TrainingRun.Status.SUCCEEDED
        assert not waiting.run.is_active
        assert TrainingRun.objects.get(is_active=True).id == active.id
        assert "below the active run's 0.990" in waiting.detail

        # Edited while beat runs: beat reads the change from the database.
        schedule.activation = Schedule.Activation.ALWAYS
        schedule_save(schedule=schedule)
        activated = wait_for_scheduled_run(schedule, ScheduledRun.Outcome.ACTIVATED, log)
        assert TrainingRun.objects.get(is_active=True).id == activated.run_id
        assert activated.run.created_by is None and activated.reason == "calendar"
    finally:
        schedule.enabled = False
        schedule_save(schedule=schedule)
        stop_worker(worker)
    assert "DatabaseScheduler" in log.read_text()
