"""Schedules: their beat entry, their runs, and the activation rule both ways."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from clustering.models import TrainingRun
from clustering.services import training_run_claim, training_run_execute
from operations.models import Notification, Schedule, ScheduledRun
from operations.schedules import ScheduleError, schedule_delete, schedule_fire, schedule_save

pytestmark = pytest.mark.django_db


def make_schedule(**fields) -> Schedule:
    fields = {"name": "Monthly", "k": 4, **fields}
    return schedule_save(schedule=Schedule(**fields))


def fire_and_train(schedule: Schedule) -> TrainingRun:
    """What beat and the worker do, in this process."""
    link = schedule_fire(schedule_id=schedule.id, enqueue=False)
    assert training_run_claim(run_id=link.run_id)
    return training_run_execute(run_id=link.run_id)


def test_a_monthly_schedule_is_a_beat_entry_with_its_crontab():
    schedule = make_schedule()
    task = PeriodicTask.objects.get(id=schedule.periodic_task_id)
    assert task.task == "operations.tasks.scheduled_retrain_task"
    assert json.loads(task.kwargs) == {"schedule_id": schedule.id}
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year) == ("0", "3", "1", "*")


def test_quarterly_and_cron_schedules():
    quarterly = make_schedule(name="Q", kind=Schedule.Kind.QUARTERLY)
    assert quarterly.periodic_task.crontab.month_of_year == "1,4,7,10"
    weekly = make_schedule(name="W", kind=Schedule.Kind.CRON, cron="30 4 * * 1")
    assert weekly.periodic_task.crontab.day_of_week == "1"


@pytest.mark.parametrize(
    ("cron", "words"), [("0 3 * *", "five fields"), ("61 3 * * *", "not valid")]
)
def test_a_bad_cron_expression_is_refused_with_the_reason(cron, words):
    with pytest.raises(ScheduleError, match=words):
        make_schedule(kind=Schedule.Kind.CRON, cron=cron)
    assert not PeriodicTask.objects.filter(name__startswith="operations-").exists()


def test_turning_a_schedule_off_disables_its_beat_entry_and_deleting_removes_it():
    schedule = make_schedule()
    schedule.enabled = False
    schedule_save(schedule=schedule)
    assert not PeriodicTask.objects.get(id=schedule.periodic_task_id).enabled
    schedule_delete(schedule=schedule)
    assert not PeriodicTask.objects.filter(name__startswith="operations-").exists()


def test_a_scheduled_run_is_a_normal_run_started_by_the_schedule(trained):
    schedule = make_schedule(activation=Schedule.Activation.ALWAYS)
    run = fire_and_train(schedule)
    assert run.status == TrainingRun.Status.SUCCEEDED and run.is_active
    assert run.created_by is None
    assert ScheduledRun.objects.get(run=run).schedule == schedule


def test_not_worse_activates_a_run_as_good_as_the_active_one(trained):
    schedule = make_schedule(activation=Schedule.Activation.NOT_WORSE)
    run = fire_and_train(schedule)
    assert run.is_active
    link = ScheduledRun.objects.get(run=run)
    assert link.outcome == ScheduledRun.Outcome.ACTIVATED
    assert "not worse" in link.detail


def test_not_worse_keeps_a_worse_run_waiting_and_tells_the_managers(
    trained, make_user, mailoutbox, django_capture_on_commit_callbacks
):
    make_user("boss", "Marketing managers", email="boss@example.com")
    # The active run claims a silhouette no refit of these customers reaches.
    TrainingRun.objects.filter(id=trained.id).update(silhouette=0.99)
    schedule = make_schedule(activation=Schedule.Activation.NOT_WORSE)
    with django_capture_on_commit_callbacks(execute=True):
        run = fire_and_train(schedule)
    assert run.status == TrainingRun.Status.SUCCEEDED and not run.is_active
    assert TrainingRun.objects.get(is_active=True).id == trained.id
    link = ScheduledRun.objects.get(run=run)
    assert link.outcome == ScheduledRun.Outcome.WAITING
    assert "below the active run's 0.990 minus 0.01" in link.detail
    assert Notification.objects.filter(kind=Notification.Kind.APPROVAL, run=run).exists()
    assert [m.subject for m in mailoutbox] == [
        f"Run {run.id} of the schedule “Monthly” waits for approval"
    ]
    assert mailoutbox[0].to == ["boss@example.com"]


def test_never_waits_for_a_person(trained):
    run = fire_and_train(make_schedule(activation=Schedule.Activation.NEVER))
    assert not run.is_active
    assert ScheduledRun.objects.get(run=run).outcome == ScheduledRun.Outcome.WAITING


def test_a_schedule_waits_its_turn_behind_a_training_in_flight(trained):
    busy = TrainingRun.objects.create(status=TrainingRun.Status.RUNNING)
    link = schedule_fire(schedule_id=make_schedule().id, enqueue=False)
    assert link.outcome == ScheduledRun.Outcome.SKIPPED and link.run is None
    assert f"Run {busy.id} was already training" in link.detail
    assert TrainingRun.objects.filter(in_flight=True).count() == 1


def test_a_manager_edits_a_schedule_on_the_page(manager_client):
    response = manager_client.post(
        "/operations/schedules/new/",
        {
            "name": "Every month",
            "enabled": "on",
            "kind": "monthly",
            "activation": "not_worse",
            "k_min": 2,
            "k_max": 8,
            "missing": "exclude",
        },
    )
    assert response.status_code == 302
    schedule = Schedule.objects.get(name="Every month")
    assert schedule.periodic_task.crontab.day_of_month == "1"
    page = manager_client.get("/operations/").content.decode()
    assert "Every month" in page and "Activate only if it is not worse" in page


def test_the_page_names_the_field_of_a_bad_cron(manager_client):
    response = manager_client.post(
        "/operations/schedules/new/",
        {"name": "x", "kind": "cron", "cron": "every day", "activation": "never",
         "k_min": 2, "k_max": 8, "missing": "exclude"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "A cron expression has five fields" in response.content.decode()
    assert not Schedule.objects.exists()


def test_marketers_do_not_see_operations(marketer_client):
    assert marketer_client.get("/operations/").status_code == 403
    assert marketer_client.post("/operations/prune/").status_code == 403
    assert "Operations</a>" not in marketer_client.get("/").content.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"k_min": 8, "k_max": 3}, "The upper end must not be below the lower end."),
        ({"k_min": 2, "k_max": 30}, "The K range must satisfy 2 &lt;= minimum &lt;= maximum"),
        ({"kind": "interval"}, "Say how many hours between runs."),
        ({"drift_psi_threshold": "-1"}, "The threshold must be above 0."),
        ({"features": ["age"]}, "Choose at least two features, or none for the default."),
    ],
)
def test_bad_schedule_options_are_refused_by_field(manager_client, fields, message):
    data = {"name": "x", "kind": "monthly", "activation": "never", "k_min": 2, "k_max": 8,
            "missing": "exclude", **fields}  # fmt: skip
    response = manager_client.post("/operations/schedules/new/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Schedule.objects.exists()


def test_the_next_run_of_a_monthly_schedule_is_the_first_at_three():
    from operations.schedules import schedule_next_run

    due = timezone.localtime(schedule_next_run(make_schedule()))
    assert (due.day, due.hour, due.minute, due.second) == (1, 3, 0, 0)
    assert due > timezone.now()


def test_the_admin_saves_a_schedule_with_its_beat_entry_and_refuses_a_bad_cron(
    admin_client,
):
    form = {"name": "Weekly", "enabled": "on", "kind": "cron", "cron": "0 4 * * 1",
            "activation": "always", "features": "[]", "k_min": 2, "k_max": 10,
            "missing": "exclude", "algorithm": "kmeans"}  # fmt: skip
    response = admin_client.post("/admin/operations/schedule/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = Schedule.objects.get(name="Weekly")
    assert schedule.periodic_task.crontab.day_of_week == "1"
    response = admin_client.post(
        "/admin/operations/schedule/add/", {**form, "name": "Bad", "cron": "0 4 * *"}
    )
    assert "A cron expression has five fields" in response.content.decode()
    assert not Schedule.objects.filter(name="Bad").exists()


def test_a_schedule_keeps_its_algorithm_and_its_runs_use_it(trained, manager_client):
    """Issue 12: a schedule stores the retrain's options, the algorithm among them."""
    response = manager_client.post(
        "/operations/schedules/new/",
        {
            "name": "Mixture monthly",
            "enabled": "on",
            "kind": "monthly",
            "activation": "always",
            "k_min": 2,
            "k_max": 6,
            "missing": "exclude",
            "algorithm": "gmm",
        },
    )
    assert response.status_code == 302
    schedule = Schedule.objects.get(name="Mixture monthly")
    assert schedule.algorithm == "gmm"
    assert "Gaussian mixture" in manager_client.get("/operations/").content.decode()
    assert 'value="gmm" selected' in manager_client.get(
        f"/operations/schedules/{schedule.id}/"
    ).content.decode().replace('selected="selected"', "selected")

    run = fire_and_train(schedule)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.algorithm_requested == "gmm" and run.algorithm == "gmm"


def test_a_schedule_without_an_algorithm_uses_k_means(manager_client):
    manager_client.post(
        "/operations/schedules/new/",
        {"name": "Plain", "kind": "monthly", "activation": "never", "k_min": 2, "k_max": 8,
         "missing": "exclude"},
    )  # fmt: skip
    assert Schedule.objects.get(name="Plain").algorithm == "kmeans"


def test_not_worse_counts_unsegmented_customers_as_a_comparison_does():
    """An HDBSCAN run's silhouette leaves its Unsegmented customers out; 'not worse' must
    count them as 0, as a compare retrain's recommendation does, or leaving a fifth of the
    customers out would pass for better segments."""
    from operations.schedules import activation_allowed

    active = TrainingRun(id=1, silhouette=0.55, stability=0.95, noise_share=None)
    density = TrainingRun(id=2, silhouette=0.65, stability=0.97, noise_share=0.2)  # 0.52 all

    allowed, words = activation_allowed(Schedule.Activation.NOT_WORSE, density, active)

    assert not allowed
    assert "silhouette 0.520 (0.650 without its 20.0% Unsegmented, who count 0)" in words
    assert "below the active run's 0.550" in words
    back, _ = activation_allowed(Schedule.Activation.NOT_WORSE, active, density)
    assert back


def test_the_next_run_of_a_monthly_schedule_is_said_at_three_not_two_fifty_nine(manager_client):
    schedule = make_schedule(kind=Schedule.Kind.MONTHLY)
    from operations.schedules import schedule_next_run

    due = schedule_next_run(schedule)

    assert (due.day, due.minute, due.second, due.microsecond) == (1, 0, 0, 0)
    assert ", 03:00" in manager_client.get("/operations/").content.decode()


def test_the_admin_edits_a_schedules_algorithm(admin_client):
    schedule = make_schedule(algorithm="ward")
    url = f"/admin/operations/schedule/{schedule.id}/change/"
    assert 'name="algorithm"' in admin_client.get(url).content.decode()

    response = admin_client.post(
        url,
        {"name": "Monthly", "enabled": "on", "kind": "monthly", "cron": "",
         "activation": "never", "features": "[]", "k": 4, "k_min": 2, "k_max": 10,
         "missing": "exclude", "algorithm": "compare"},
    )  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Schedule.objects.get(id=schedule.id).algorithm == "compare"
