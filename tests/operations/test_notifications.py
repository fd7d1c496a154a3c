"""Notifications: a finished or failed run tells the managers, by email and on the
dashboard, once; each user can turn either off."""

from __future__ import annotations

import pytest

from clustering.models import TrainingRun
from clustering.services import TrainingParams, training_run_start
from clustering.tasks import train_task
from operations.models import Notification, NotificationPreference
from operations.notifications import notify_finished_runs
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def bosses(make_user):
    return (
        make_user("ann", "Marketing managers", email="ann@example.com"),
        make_user("bob", "Marketing managers", email="bob@example.com"),
        make_user("mia", "Marketing", email="mia@example.com"),
    )


def failed_run_through_the_task(capture) -> TrainingRun:
    """A retrain with no customers fails; train_task runs it as the worker would (eagerly,
    so Celery's task signals fire as in the worker)."""
    run = training_run_start(params=TrainingParams(), enqueue=False)
    with capture(execute=True):
        train_task.apply(args=[run.id])
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    return run


def test_a_failed_run_emails_the_managers(bosses, mailoutbox, django_capture_on_commit_callbacks):
    run = failed_run_through_the_task(django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mailoutbox) == ["ann@example.com", "bob@example.com"]
    assert mailoutbox[0].subject == f"Run {run.id} failed"
    assert "Fewer than two features are known" in mailoutbox[0].body
    assert Notification.objects.get().emailed_to == 2


def test_a_run_is_announced_once(bosses, mailoutbox, django_capture_on_commit_callbacks):
    failed_run_through_the_task(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert notify_finished_runs() == 0
    assert len(mailoutbox) == 2


def test_a_manager_who_turned_emails_off_gets_none(
    bosses, mailoutbox, django_capture_on_commit_callbacks
):
    ann = bosses[0]
    response = client_for(ann).post("/operations/notifications/", {"dashboard": "on"})
    assert response.status_code == 302
    assert not NotificationPreference.objects.get(user=ann).email
    failed_run_through_the_task(django_capture_on_commit_callbacks)
    assert [m.to for m in mailoutbox] == [["bob@example.com"]]


def test_the_dashboard_shows_notifications_unless_turned_off(
    bosses, django_capture_on_commit_callbacks
):
    run = failed_run_through_the_task(django_capture_on_commit_callbacks)
    ann, bob, mia = bosses
    assert f"Run {run.id} failed" in client_for(ann).get("/").content.decode()
    assert f"Run {run.id} failed" not in client_for(mia).get("/").content.decode()
    NotificationPreference.objects.create(user=bob, dashboard=False)
    assert f"Run {run.id} failed" not in client_for(bob).get("/").content.decode()


def test_a_finished_run_is_announced(
    trained, bosses, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert notify_finished_runs() == 1
    assert mailoutbox[0].subject == f"Run {trained.id} finished: 4 segments"
    assert "It is now the active model." in mailoutbox[0].body
