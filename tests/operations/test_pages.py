"""The operations page: schedules and next run, last runs, worker and queue, model files."""

from __future__ import annotations

import pytest

from operations.models import Schedule, ScheduledRun
from operations.schedules import schedule_fire, schedule_save
from operations.status import WORKER, status_note

pytestmark = pytest.mark.django_db


def test_the_page_shows_schedules_runs_files_and_a_live_worker(trained, manager_client):
    schedule_save(schedule=Schedule(name="Monthly", k=4))
    status_note(name=WORKER, ok=True)
    page = manager_client.get("/operations/").content.decode()
    assert "Monthly (the 1st, 03:00)" in page and "Run now" in page
    assert f"run {trained.id}</a>" in page and " s</td>" in page  # a duration
    assert trained.model_file in page and "on disk" in page
    assert "The worker answered" in page
    assert "The queue is available" in page


def test_an_unreachable_queue_is_named_with_since_when(trained, manager_client):
    from segmentation_site.celery import app

    kept = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    try:
        page = manager_client.get("/operations/").content.decode()
    finally:
        app.conf.broker_url = kept
    assert "The queue is unavailable since" in page


def test_run_now_starts_the_schedules_run_and_the_run_says_who(trained, manager, manager_client):
    schedule = schedule_save(schedule=Schedule(name="Quarterly", kind="quarterly", k=4))
    response = manager_client.post(f"/operations/schedules/{schedule.id}/run/")
    link = ScheduledRun.objects.get()
    assert (link.reason, link.triggered_by) == ("manual", manager)
    assert response.url == f"/runs/{link.run_id}/"
    detail = manager_client.get(f"/runs/{link.run_id}/").content.decode()
    assert "by the schedule “Quarterly”" in detail
    # A second press while it waits for the worker: one training at a time.
    manager_client.post(f"/operations/schedules/{schedule.id}/run/")
    assert ScheduledRun.objects.filter(outcome="skipped").count() == 1


def test_a_disabled_schedule_does_not_fire_on_its_calendar(trained):
    schedule = schedule_save(schedule=Schedule(name="Off", enabled=False, k=4))
    assert schedule_fire(schedule_id=schedule.id, enqueue=False) is None


def test_managers_see_the_operations_link(manager_client):
    assert 'href="/operations/">Operations</a>' in manager_client.get("/").content.decode()
