"""Keeping segments current: schedules, drift, prediction history, notifications.

A Schedule owns one django-celery-beat PeriodicTask (the database-backed beat schedule)
and is the only thing that edits it. Runs, segments and customers are the clustering and
customers apps'; this app points at them and never changes their tables.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from clustering.algorithms import KMEANS
from clustering.forms import ALGORITHM_CHOICES
from clustering.models import Segment, TrainingRun

# "Only if not worse": a scheduled run activates itself when its silhouette is at least the
# active run's minus SILHOUETTE_TOLERANCE and its stability at least the active run's minus
# STABILITY_TOLERANCE (small allowances: two fits of the same customers differ a little).
SILHOUETTE_TOLERANCE = 0.01
STABILITY_TOLERANCE = 0.02


class Schedule(models.Model):
    class Kind(models.TextChoices):
        MONTHLY = "monthly", "Monthly (the 1st, 03:00)"
        QUARTERLY = "quarterly", "Quarterly (1 Jan, Apr, Jul, Oct, 03:00)"
        CRON = "cron", "A cron expression"
        INTERVAL = "interval", "Every so many hours"

    class Activation(models.TextChoices):
        ALWAYS = "always", "Always activate the new run"
        NOT_WORSE = "not_worse", "Activate only if it is not worse than the active run"
        NEVER = "never", "Never: wait for a manager to activate it"

    name = models.CharField(max_length=80, unique=True)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MONTHLY)
    cron = models.CharField(
        max_length=100, blank=True, help_text="Minute hour day month weekday, e.g. 0 3 * * 1."
    )
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="For 'every so many hours' (stored in seconds)."
    )
    activation = models.CharField(
        max_length=10, choices=Activation.choices, default=Activation.NOT_WORSE
    )
    # The training options, as a retrain form would give them. No features: the catalogue's
    # numeric features that enough customers have, chosen when the run starts.
    features = models.JSONField(default=list, blank=True)
    k = models.PositiveSmallIntegerField(null=True, blank=True)
    k_min = models.PositiveSmallIntegerField(default=2)
    k_max = models.PositiveSmallIntegerField(default=10)
    missing = models.CharField(
        max_length=10, choices=TrainingRun.Missing.choices, default=TrainingRun.Missing.EXCLUDE
    )
    # One algorithm, or "compare" (the retrain form's choices: clustering.forms).
    algorithm = models.CharField(max_length=12, choices=ALGORITHM_CHOICES, default=KMEANS)
    # Between its dates, retrain as soon as drift is measured above this PSI (None: never).
    drift_psi_threshold = models.FloatField(null=True, blank=True)
    # related_name: PeriodicTask has a ``schedule`` property of its own that beat reads.
    periodic_task = models.OneToOneField(
        PeriodicTask,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="retraining_schedule",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("manage_operations", "Can see the operations page, edit schedules and prune")
        ]

    def __str__(self) -> str:
        return self.name


class ScheduledRun(models.Model):
    """A run a schedule started (or tried to), and what its activation rule decided."""

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        SKIPPED = "skipped", "Skipped"
        ACTIVATED = "activated", "Activated"
        WAITING = "waiting", "Waiting for approval"

    class Reason(models.TextChoices):
        CALENDAR = "calendar", "its calendar"
        DRIFT = "drift", "drift above its threshold"
        MANUAL = "manual", "run now"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.CASCADE, related_name="scheduled"
    )
    reason = models.CharField(max_length=10, choices=Reason.choices, default=Reason.CALENDAR)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.STARTED)
    detail = models.CharField(max_length=400, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.schedule} ({self.get_outcome_display()})"


class DriftBaseline(models.Model):
    """The customers a run was trained on, as drift compares with: per feature the decile
    edges and the share in each bin; every customer's cluster (compressed numpy arrays)."""

    run = models.OneToOneField(TrainingRun, on_delete=models.CASCADE, related_name="+")
    features = models.JSONField()
    edges = models.JSONField(help_text="{feature: inner bin edges}")
    shares = models.JSONField(help_text="{feature: share of customers in each bin}")
    medians = models.JSONField(default=dict)
    customers = models.PositiveIntegerField()
    labels = models.BinaryField(help_text="zlib of npz: customer key differences, labels")
    # False: the run was trained before baselines were kept; the customers as they were at
    # taken_at stand in for its training population.
    from_training = models.BooleanField(default=True)
    taken_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"drift baseline of run {self.run_id}"


class DriftReport(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="+")
    features = models.JSONField(help_text="[{feature, label, psi, level, words}], worst first")
    max_psi = models.FloatField()
    level = models.CharField(max_length=10)
    compared = models.PositiveIntegerField(help_text="Customers in the run and still here.")
    changed = models.PositiveIntegerField(help_text="Of them, nearest segment changed.")
    new_customers = models.PositiveIntegerField(default=0)
    gone_customers = models.PositiveIntegerField(default=0)
    customers_now = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"drift of run {self.run_id} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def changed_share(self) -> float:
        return self.changed / self.compared if self.compared else 0.0


class PredictionRecord(models.Model):
    class Channel(models.TextChoices):
        PAGE = "page", "Page"
        API = "api", "API"

    # When the prediction was made (API predictions are written a moment later, together).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=4, choices=Channel.choices)
    # The run that answered; kept as a number too, so a deleted run leaves a readable row.
    run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run_number = models.PositiveIntegerField()
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    segment_name = models.CharField(max_length=80)
    confidence = models.FloatField()
    unusual = models.BooleanField(default=False)
    inputs = models.JSONField(help_text="The values the model used, by feature.")
    # The customer ID the caller sent (API), to find a customer's predictions.
    customer_ref = models.CharField(max_length=100, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("view_all_predictions", "Can see and export everyone's predictions")]

    def __str__(self) -> str:
        return f"{self.segment_name} ({self.channel}, {self.created_at:%Y-%m-%d %H:%M})"


class Notification(models.Model):
    class Kind(models.TextChoices):
        RUN_SUCCEEDED = "run_ok", "Run finished"
        RUN_FAILED = "run_failed", "Run failed"
        DRIFT = "drift", "Drift above the threshold"
        APPROVAL = "approval", "Scheduled run waiting for approval"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subject = models.CharField(max_length=200)
    body = models.TextField()
    emailed_to = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Told once per run and kind, whichever process notices first.
            models.UniqueConstraint(fields=["kind", "run"], name="notification_once_per_run")
        ]

    def __str__(self) -> str:
        return self.subject


class NotificationPreference(models.Model):
    """A user's choice; without a row both are on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email = models.BooleanField(default=True, help_text="Send me notifications by email.")
    dashboard = models.BooleanField(default=True, help_text="Show notifications on my dashboard.")

    def __str__(self) -> str:
        return f"notifications of {self.user}"


class ServiceStatus(models.Model):
    """When the worker last answered, and since when the queue has been unavailable."""

    name = models.CharField(max_length=20, unique=True)
    ok = models.BooleanField(default=True)
    since = models.DateTimeField(help_text="When it became ok or not ok.")
    checked_at = models.DateTimeField()
    detail = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'unavailable'}"
