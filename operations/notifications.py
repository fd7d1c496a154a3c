"""Telling the managers: a run finished or failed, drift passed its threshold, a scheduled
run waits for approval. Each is one Notification row (once per run and kind, whichever
process notices first), shown on the dashboard, and an email to every manager who has not
turned emails off. Emails leave after the row is committed; a mail server that is down is
logged, never a failed run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from clustering.models import TrainingRun
from operations.models import Notification, NotificationPreference, ScheduledRun

logger = logging.getLogger(__name__)

MANAGE = ("operations", "manage_operations")
# Runs that finished longer ago than this are not announced any more (a site upgraded to
# notifications does not mail its whole history).
LOOK_BACK = timedelta(days=1)


def managers():
    """Active users with the operations permission (through a group, directly, or as a
    superuser)."""
    permission = Permission.objects.filter(
        content_type__app_label=MANAGE[0], codename=MANAGE[1]
    ).first()
    who = Q(is_superuser=True)
    if permission is not None:
        who |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    return get_user_model().objects.filter(who, is_active=True).distinct()


def _email_recipients() -> list[str]:
    off = NotificationPreference.objects.filter(email=False).values("user_id")
    return [
        email for email in managers().exclude(id__in=off).values_list("email", flat=True) if email
    ]


def notify(*, kind: str, run: TrainingRun | None, subject: str, body: str) -> Notification | None:
    """Record the notification once and email it after commit; None if already told."""
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                kind=kind, run=run, subject=subject[:200], body=body
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: _email(notification.id))
    return notification


def _email(notification_id: int) -> None:
    notification = Notification.objects.get(id=notification_id)
    recipients = _email_recipients()
    if not recipients:
        return
    messages = [
        (notification.subject, notification.body, settings.DEFAULT_FROM_EMAIL, [address])
        for address in recipients
    ]
    try:
        sent = send_mass_mail(messages, fail_silently=False)
    except Exception:  # smtplib and socket errors: the notification stays on the dashboard
        logger.warning("could not email notification %s", notification_id, exc_info=True)
        return
    Notification.objects.filter(id=notification_id).update(emailed_to=sent)


def _run_url(run: TrainingRun) -> str:
    return settings.SITE_URL + reverse("clustering:run_detail", args=[run.id])


def _origin(run: TrainingRun) -> str:
    link = ScheduledRun.objects.filter(run=run).select_related("schedule").first()
    if link is not None:
        return f"started by the schedule “{link.schedule.name}”"
    if run.created_by is not None:
        return f"started by {run.created_by.get_username()}"
    return "started from the command line"


def notify_run_finished(run: TrainingRun) -> Notification | None:
    if run.status == TrainingRun.Status.FAILED:
        return notify(
            kind=Notification.Kind.RUN_FAILED,
            run=run,
            subject=f"Run {run.id} failed",
            body=f"Run {run.id} ({_origin(run)}) failed: {run.error}\n\n"
            f"The active model did not change. Details: {_run_url(run)}",
        )
    active = "It is now the active model." if run.is_active else "It is not active."
    return notify(
        kind=Notification.Kind.RUN_SUCCEEDED,
        run=run,
        subject=f"Run {run.id} finished: {run.chosen_k} segments",
        body=f"Run {run.id} ({_origin(run)}) finished with {run.chosen_k} segments, "
        f"silhouette {run.silhouette or 0:.2f}, stability {run.stability or 0:.2f}. {active}\n\n"
        f"Details: {_run_url(run)}",
    )


def notify_finished_runs() -> int:
    """Announce every run that finished recently and was not announced yet. Called after
    each training task and by beat, so runs failed by the reaper are announced too."""
    since = timezone.now() - LOOK_BACK
    told = Notification.objects.filter(
        kind__in=[Notification.Kind.RUN_SUCCEEDED, Notification.Kind.RUN_FAILED],
        run__isnull=False,
    ).values("run_id")
    runs = TrainingRun.objects.filter(
        status__in=[TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED],
        finished_at__gte=since,
    ).exclude(id__in=told)
    count = 0
    for run in runs.defer("projection").select_related("created_by"):
        count += notify_run_finished(run) is not None
    return count


def notify_approval_waiting(*, link: ScheduledRun) -> Notification | None:
    run = link.run
    return notify(
        kind=Notification.Kind.APPROVAL,
        run=run,
        subject=f"Run {run.id} of the schedule “{link.schedule.name}” waits for approval",
        body=f"{link.detail}\n\nRun {run.id} is trained but not active. A manager can compare "
        f"it and activate it: {_run_url(run)}",
    )


def notify_drift(report) -> Notification | None:
    moved = ", ".join(f"{f['label']} (PSI {f['psi']:.2f})" for f in report.features[:3])
    return notify(
        kind=Notification.Kind.DRIFT,
        run=report.run,
        subject=f"Customers have shifted since run {report.run_id}",
        body=f"Drift is {report.level}: {moved}; the nearest segment changed for "
        f"{report.changed_share:.0%} of the customers. Consider retraining.",
    )


def notifications_for(user, *, limit: int = 5):
    """The latest notifications for a manager's dashboard (none if they turned it off)."""
    if not user.has_perm("operations.manage_operations"):
        return []
    preference = NotificationPreference.objects.filter(user=user).first()
    if preference is not None and not preference.dashboard:
        return []
    since = timezone.now() - timedelta(days=7)
    return list(Notification.objects.filter(created_at__gte=since)[:limit])
