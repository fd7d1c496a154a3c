"""Segments (lasting marketing personas) and the training runs that produce clusters.

A Segment outlives runs: marketers edit its name and strategy. A Cluster
belongs to one run and points at the segment it was matched to, so an
edited strategy carries over when the model is retrained.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clustering import palette

# A run no worker claimed in this time may have lost its queue message (a broker restarted
# without persistence): its task is sent again, at most this often.
RESEND_AFTER = timedelta(minutes=1)


# What people may write on a segment: enough for a strategy, not a document (every page
# showing the segment, and its campaign export, carries it). The forms enforce these.
SEGMENT_DESCRIPTION_MAX_LENGTH = 1_000
SEGMENT_ACTIONS_MAX = 10
SEGMENT_ACTION_MAX_LENGTH = 400
# The strategy column of a campaign export, repeated on every member's row, is cut here.
SEGMENT_STRATEGY_EXPORT_MAX_LENGTH = 1_000


class Segment(models.Model):
    name = models.CharField(max_length=80, unique=True)
    # A persona key ("high_value") or a profile signature ("profile:high=grocery;low=fresh").
    archetype = models.CharField(max_length=200, help_text="The engine's archetype at creation.")
    description = models.TextField(blank=True)
    actions = models.JSONField(default=list, blank=True, help_text="Concrete marketing actions.")
    is_active = models.BooleanField(
        default=True, help_text="False when the active run has no cluster for this segment."
    )
    # Its colour and marker (clustering.palette) for life: chosen when the segment is created.
    colour_index = models.PositiveSmallIntegerField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        permissions = [("export_segment", "Can export segment members for campaigns")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if self.colour_index is None:
            # Created outside a training (the admin, a test): the first colour no segment has.
            held = Segment.objects.values_list("colour_index", flat=True)
            self.colour_index = palette.colour_for_new_segment(held=held)
        super().save(*args, **kwargs)

    @property
    def colour(self) -> palette.SegmentColour:
        return palette.colour_of(self.colour_index)


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    # Customers missing a chosen feature are left out, or get the feature's median.
    class Missing(models.TextChoices):
        EXCLUDE = "exclude", "Leave them out of the segmentation"
        MEDIAN = "median", "Fill in the median of the other customers"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # True while pending or running, NULL otherwise: a partial unique index on it
    # lets the database itself refuse a second concurrent training.
    in_flight = models.BooleanField(null=True, default=True, editable=False)
    is_active = models.BooleanField(default=False)

    # Empty until the run starts when the features are chosen automatically (the catalogue's
    # numeric features that enough customers have).
    features = models.JSONField(default=list)
    features_auto = models.BooleanField(default=False)
    # What each feature was when the run trained (label, unit, range): its model reads and
    # explains values this way even if the catalogue changes later.
    feature_info = models.JSONField(default=dict, blank=True)
    missing = models.CharField(max_length=10, choices=Missing.choices, default=Missing.EXCLUDE)
    imputed = models.JSONField(default=dict, blank=True, help_text="Median filled in, by feature.")
    missing_by_feature = models.JSONField(
        default=dict, blank=True, help_text="Customers without each feature."
    )
    # None: choose automatically (skewed money-like features); a list: exactly these.
    log_requested = models.JSONField(null=True, blank=True)
    log_features = models.JSONField(default=list, blank=True)
    outliers = models.PositiveIntegerField(
        default=0, help_text="Customers far outside the rest: not used to fit the centres."
    )
    min_segment_share = models.FloatField(null=True, blank=True)
    sweep_sample_size = models.PositiveIntegerField(null=True, blank=True)
    k_requested = models.PositiveSmallIntegerField(null=True, blank=True)
    k_min = models.PositiveSmallIntegerField(default=2)
    k_max = models.PositiveSmallIntegerField(default=10)

    k_values = models.JSONField(default=list, blank=True)
    inertia_by_k = models.JSONField(default=list, blank=True)
    silhouette_by_k = models.JSONField(default=list, blank=True)
    chosen_k = models.PositiveSmallIntegerField(null=True, blank=True)
    silhouette = models.FloatField(null=True, blank=True)
    inertia = models.FloatField(null=True, blank=True)
    stability = models.FloatField(null=True, blank=True)
    within_variance = models.FloatField(null=True, blank=True)
    # Squared distance (sd) to the nearest centre that 1 in 1,000 training customers exceed:
    # a customer placed beyond it is flagged unusual.
    unusual_distance2 = models.FloatField(null=True, blank=True)
    algorithm = models.CharField(max_length=40, blank=True)
    # What the retrain asked for: one algorithm, or "compare" (clustering.algorithms).
    algorithm_requested = models.CharField(max_length=12, default="kmeans")
    # A mixture's covariance type: asked for ("auto": chosen by BIC) and the one fitted.
    covariance_requested = models.CharField(max_length=12, default="auto")
    covariance_type = models.CharField(max_length=12, blank=True)
    # A candidate of a "compare" retrain points at that run (which holds the recommended
    # candidate); each candidate is a whole run, so any of them can be activated.
    comparison_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="candidates"
    )
    # On the compare run: every candidate's metrics, the rule and the recommended one.
    comparison = models.JSONField(default=dict, blank=True)
    stability_spread = models.FloatField(
        null=True, blank=True, help_text="Standard deviation of the refits' agreement."
    )
    stability_refits = models.PositiveSmallIntegerField(null=True, blank=True)
    stability_sample_size = models.PositiveIntegerField(null=True, blank=True)
    calinski_harabasz = models.FloatField(null=True, blank=True)
    davies_bouldin = models.FloatField(null=True, blank=True)
    bic_by_k = models.JSONField(default=list, blank=True, help_text="Mixtures only.")
    # Share of the customers in no dense group (HDBSCAN's Unsegmented).
    noise_share = models.FloatField(null=True, blank=True)
    silhouette_sample_size = models.PositiveIntegerField(null=True, blank=True)
    customers_used = models.PositiveIntegerField(default=0)
    customers_excluded = models.PositiveIntegerField(default=0)
    population_means = models.JSONField(default=dict, blank=True)
    projection = models.JSONField(default=dict, blank=True, help_text="2-D PCA sample for charts.")
    assignments_pruned = models.BooleanField(default=False)
    timings = models.JSONField(default=dict, blank=True)

    progress = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=120, blank=True)
    error = models.TextField(blank=True)

    model_file = models.CharField(max_length=200, blank=True)
    model_sha256 = models.CharField(max_length=64, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # Who made it the active model last (the person who started it, for a retrain's own
    # activation); None with activated_at set: the command line.
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the training task was last sent again because no worker had claimed the run (its
    # queue message may have been lost with a broker restart).
    resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_run"
            ),
            models.UniqueConstraint(
                fields=["in_flight"], condition=Q(in_flight=True), name="one_training_at_a_time"
            ),
        ]
        permissions = [
            ("start_training", "Can start a retrain"),
            ("activate_run", "Can activate (roll back to) a run"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def waiting_long(self) -> bool:
        """Pending for longer than a worker takes to claim a run: its message may be lost."""
        return (
            self.status == self.Status.PENDING
            and self.created_at is not None
            and timezone.now() - self.created_at > RESEND_AFTER
        )

    @property
    def pending_deadline(self):
        """When a run that no worker claims is marked failed (CLUSTERING_PENDING_TIMEOUT)."""
        return self.created_at + timedelta(seconds=settings.CLUSTERING_PENDING_TIMEOUT)

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class Cluster(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="clusters")
    index = models.PositiveSmallIntegerField(help_text="The K-Means label within the run.")
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="clusters")
    archetype = models.CharField(max_length=200)
    reason = models.CharField(max_length=300, help_text="Why the engine chose this archetype.")
    centroid = models.JSONField(help_text="Centre in original units, by feature.")
    centroid_sd = models.JSONField(help_text="Centre in standard deviations from the mean.")
    size = models.PositiveIntegerField()
    share = models.FloatField()
    means = models.JSONField(default=dict)
    medians = models.JSONField(default=dict)
    sex_mix = models.JSONField(default=dict)
    # Categorical attributes: {feature: [[value, share], ...]}, most common first.
    category_mix = models.JSONField(default=dict, blank=True)
    mean_confidence = models.FloatField(null=True, blank=True)
    # Mean share of the members' pairs that resampled refits keep together.
    stability = models.FloatField(null=True, blank=True)
    # HDBSCAN's customers in no dense group: shown as Unsegmented, never a persona.
    is_noise = models.BooleanField(default=False)

    class Meta:
        ordering = ["run", "-size"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="cluster_index_unique"),
            models.UniqueConstraint(fields=["run", "segment"], name="cluster_segment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.segment.name} (run {self.run_id})"


class ClusterAssignment(models.Model):
    """One customer's cluster in one run; a million rows per run are written at once.

    The primary key is (run, customer) and the foreign keys carry no database
    constraints: per-row constraint checks and a surrogate key made writing a
    run's assignments five times slower. The training service writes them in
    the same transaction as their run and clusters, and Django's on_delete
    still removes them with a customer, run or cluster.
    """

    pk = models.CompositePrimaryKey("run", "customer")
    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.CASCADE,
        related_name="assignments",
        db_constraint=False,
        db_index=False,
    )
    confidence = models.FloatField()
    # Far from every segment centre (or left out of fitting as an outlier): the segment is
    # only the nearest guess.
    unusual = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # Serves a segment's members page by confidence, ties broken by customer,
            # without sorting the whole segment.
            models.Index(
                fields=["cluster", "confidence", "customer"], name="assignment_cluster_conf_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"customer {self.customer_id} in cluster {self.cluster_id} (run {self.run_id})"


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its sha256 is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=80, help_text="What uses it, e.g. 'CRM sync'.")
    prefix = models.CharField(max_length=12, editable=False, help_text="To recognise it in lists.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.user})"


class RunComparison(models.Model):
    """How many customers went from which cluster of one run to which of a later one.

    Counting means joining two runs' assignments (a million rows each), so the counts
    are kept once computed: the comparison page then reads a few dozen numbers, and a
    comparison outlives the pruning of its runs' assignments.
    """

    earlier = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="+")
    later = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="+")
    moves = models.JSONField(help_text="[earlier cluster id, later cluster id, customers] rows.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["earlier", "later"], name="run_comparison_unique"),
            models.CheckConstraint(
                condition=Q(earlier__lt=models.F("later")), name="run_comparison_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.earlier_id} to run {self.later_id}"
