"""Scheduled retraining: a Schedule's beat entry, its runs, and its activation rule.

A Schedule owns one django-celery-beat PeriodicTask; ``schedule_save`` writes both in one
transaction, so beat (which watches the table) never sees one without the other. A
scheduled run is an ordinary TrainingRun started through clustering.services: it waits
its turn like any other ("one training at a time"), and a ScheduledRun row says which
schedule started it and what its activation rule decided.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from celery.schedules import crontab
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from clustering.models import TrainingRun
from clustering.selectors import run_in_flight
from clustering.services import TrainingParams, training_run_start
from operations.models import (
    SILHOUETTE_TOLERANCE,
    STABILITY_TOLERANCE,
    Schedule,
    ScheduledRun,
)

TASK = "operations.tasks.scheduled_retrain_task"
# minute hour day-of-month month day-of-week
MONTHLY = ("0", "3", "1", "*", "*")
QUARTERLY = ("0", "3", "1", "1,4,7,10", "*")


class ScheduleError(ValueError):
    """A schedule that cannot be run as written; the message names the field."""


def cron_fields(schedule: Schedule) -> tuple[str, str, str, str, str]:
    if schedule.kind == Schedule.Kind.MONTHLY:
        return MONTHLY
    if schedule.kind == Schedule.Kind.QUARTERLY:
        return QUARTERLY
    return cron_parse(schedule.cron)


def cron_parse(text: str) -> tuple[str, str, str, str, str]:
    """Five cron fields, checked by Celery's own parser."""
    fields = tuple((text or "").split())
    if len(fields) != 5:
        raise ScheduleError(
            "A cron expression has five fields: minute hour day-of-month month day-of-week "
            f"(e.g. '0 3 1 * *'); {text!r} has {len(fields)}."
        )
    minute, hour, day, month, weekday = fields
    try:
        crontab(minute, hour, weekday, day, month)
    except (ValueError, IndexError, KeyError) as problem:
        raise ScheduleError(f"The cron expression {text!r} is not valid: {problem}.") from None
    return fields


def schedule_params(schedule: Schedule) -> TrainingParams:
    return TrainingParams(
        features=tuple(schedule.features or ()),
        k=schedule.k,
        k_min=schedule.k_min,
        k_max=schedule.k_max,
        missing=schedule.missing,
        algorithm=schedule.algorithm,
    )


def schedule_save(*, schedule: Schedule, user=None) -> Schedule:
    """Save the schedule and its beat entry together (beat picks the change up by itself)."""
    schedule_params(schedule)  # raises ValueError for options a retrain would refuse
    if schedule.kind == Schedule.Kind.INTERVAL:
        if not schedule.interval_seconds:
            raise ScheduleError("Say how many hours between runs.")
    else:
        cron_fields(schedule)
    with transaction.atomic():
        if schedule.pk is None and user is not None and user.is_authenticated:
            schedule.created_by = user
        schedule.save()
        task = schedule.periodic_task or PeriodicTask(name=f"operations-schedule-{schedule.pk}")
        task.task = TASK
        task.kwargs = json.dumps({"schedule_id": schedule.pk})
        task.enabled = schedule.enabled
        task.description = f"Retraining schedule “{schedule.name}” (operations)"
        task.interval, task.crontab = _beat_schedule(schedule)
        task.save()
        if schedule.periodic_task_id != task.id:
            schedule.periodic_task = task
            schedule.save(update_fields=["periodic_task"])
    return schedule


def _beat_schedule(schedule: Schedule):
    if schedule.kind == Schedule.Kind.INTERVAL:
        every, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.interval_seconds, period=IntervalSchedule.SECONDS
        )
        return every, None
    minute, hour, day, month, weekday = cron_fields(schedule)
    cron, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day,
        month_of_year=month,
        day_of_week=weekday,
        timezone=settings.TIME_ZONE,
    )
    return None, cron


def schedule_delete(*, schedule: Schedule) -> None:
    with transaction.atomic():
        task = schedule.periodic_task
        schedule.delete()
        if task is not None:
            task.delete()


def schedule_next_run(schedule: Schedule) -> datetime | None:
    """When beat will next start the schedule (None when it is off)."""
    task = schedule.periodic_task
    if not schedule.enabled or task is None:
        return None
    now = timezone.now()
    remaining = task.schedule.remaining_estimate(task.last_run_at or task.date_changed or now)
    due = max(now, now + remaining)
    if task.crontab_id:  # a crontab fires on the minute; the estimate is off by a moment
        due = (due + timedelta(seconds=30)).replace(second=0, microsecond=0)
    return due


def schedule_fire(
    *,
    schedule_id: int,
    reason: str = ScheduledRun.Reason.CALENDAR,
    user=None,
    enqueue: bool = True,
) -> ScheduledRun | None:
    """Start the schedule's retrain, or note why not (a training already in flight).

    The run and its ScheduledRun row are committed together, so the worker that trains
    it always finds which schedule (and activation rule) it belongs to."""
    schedule = Schedule.objects.filter(id=schedule_id).first()
    if schedule is None or (reason == ScheduledRun.Reason.CALENDAR and not schedule.enabled):
        return None
    triggered_by = user if user is not None and user.is_authenticated else None
    with transaction.atomic():
        busy = run_in_flight()
        if busy is not None:
            return ScheduledRun.objects.create(
                schedule=schedule,
                reason=reason,
                outcome=ScheduledRun.Outcome.SKIPPED,
                detail=f"Run {busy.id} was already training (one training at a time).",
                triggered_by=triggered_by,
            )
        run = training_run_start(params=schedule_params(schedule), enqueue=enqueue)
        return ScheduledRun.objects.create(
            schedule=schedule, run=run, reason=reason, triggered_by=triggered_by
        )


def activation_allowed(
    rule: str,
    candidate: TrainingRun,
    active: TrainingRun | None,
) -> tuple[bool, str]:
    """Whether a scheduled run activates itself under ``rule``, and why, in words."""
    if rule == Schedule.Activation.ALWAYS:
        return True, "The schedule activates every run it starts."
    if rule == Schedule.Activation.NEVER:
        return False, "The schedule waits for a manager to activate its runs."
    if active is None:
        return True, "There was no active model to compare with."
    worse = []
    silhouette, reference = _silhouette_all(candidate), _silhouette_all(active)
    if _below(silhouette, reference, SILHOUETTE_TOLERANCE):
        worse.append(
            f"silhouette {_silhouette_words(candidate)} is below the active run's "
            f"{_silhouette_words(active)} minus {SILHOUETTE_TOLERANCE}"
        )
    if _below(candidate.stability, active.stability, STABILITY_TOLERANCE):
        worse.append(
            f"stability {_num(candidate.stability)} is below the active run's "
            f"{_num(active.stability)} minus {STABILITY_TOLERANCE}"
        )
    if worse:
        return False, f"Not activated: its {' and its '.join(worse)}."
    return True, (
        f"Activated: silhouette {_silhouette_words(candidate)} and stability "
        f"{_num(candidate.stability)} are not worse than run {active.id}'s "
        f"({_silhouette_words(active)}, {_num(active.stability)})."
    )


def _silhouette_all(run: TrainingRun) -> float | None:
    """The silhouette with HDBSCAN's Unsegmented customers counting 0, as a comparison
    recommends (clustering.algorithms.CandidateScore): a run that leaves more customers
    out must not look better for it."""
    if run.silhouette is None:
        return None
    return run.silhouette * (1.0 - (run.noise_share or 0.0))


def _silhouette_words(run: TrainingRun) -> str:
    if not run.noise_share or run.silhouette is None:
        return _num(run.silhouette)
    return (
        f"{_num(_silhouette_all(run))} ({_num(run.silhouette)} without its "
        f"{run.noise_share:.1%} Unsegmented, who count 0)"
    )


def _below(value: float | None, reference: float | None, tolerance: float) -> bool:
    if reference is None:
        return False
    return value is None or value < reference - tolerance


def _num(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.3f}"


def scheduled_run_decide(*, run_id: int) -> bool | None:
    """The activation rule for a run a schedule started (None: not a scheduled run)."""
    link = ScheduledRun.objects.select_related("schedule").filter(run_id=run_id).first()
    if link is None:
        return None
    candidate = TrainingRun.objects.get(id=run_id)
    active = TrainingRun.objects.filter(is_active=True).exclude(id=run_id).first()
    allowed, detail = activation_allowed(link.schedule.activation, candidate, active)
    link.outcome = ScheduledRun.Outcome.ACTIVATED if allowed else ScheduledRun.Outcome.WAITING
    link.detail = detail[:400]
    link.save(update_fields=["outcome", "detail"])
    if not allowed:
        from operations.notifications import notify_approval_waiting

        notify_approval_waiting(link=link)
    return allowed
