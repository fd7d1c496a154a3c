"""Purchase histories: one row per purchase (or return), and the customers' RFM values.

Purchases arrive from order logs (import_transactions); the recency, frequency and
monetary values derived from them are kept per customer (CustomerRfm), recomputed after
every import and before every retrain, and join the feature catalogue.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.db import models

from customers.catalogue import TEXT_MAX_LENGTH
from purchases.transaction_format import ORDER_ID_MAX_LENGTH


class Purchase(models.Model):
    """A purchase; a negative amount is a return."""

    # No database constraint: ten million rows go in with COPY, checked by the import. Only
    # the indexes the reads need (each one more slowed every insert): the customer's days,
    # and the order IDs a later file may repeat (most logs have none, so a partial index).
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    date = models.DateField()
    time = models.TimeField(null=True, blank=True)
    amount = models.FloatField(help_text="Negative for a return.")
    quantity = models.IntegerField(null=True, blank=True)
    order_id = models.CharField(max_length=ORDER_ID_MAX_LENGTH, blank=True)
    product = models.CharField(max_length=TEXT_MAX_LENGTH, blank=True)
    source = models.ForeignKey(
        "PurchaseFile",
        on_delete=models.CASCADE,
        related_name="purchases",
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        indexes = [
            models.Index(fields=["customer", "date"], name="purchase_customer_date_idx"),
            models.Index(
                fields=["order_id"], condition=~models.Q(order_id=""), name="purchase_order_id_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount:g} on {self.date} (customer {self.customer_id})"


class PurchaseFile(models.Model):
    """An imported order log: the same content is never imported twice."""

    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    rows = models.PositiveIntegerField(default=0)
    customers_created = models.PositiveIntegerField(default=0)
    skipped_orders = models.PositiveIntegerField(default=0)
    date_format = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.rows:,} purchases)"


class CustomerRfm(models.Model):
    """A customer's recency, frequency and monetary values as of ``as_of``, with the
    1-5 scores and the named RFM group."""

    # No database constraint: the refresh rewrites a million rows of customers it has just
    # read from the purchases, and the key check locked each customer row (200 s of a
    # 10-million-purchase refresh); deleting a customer still deletes its row (the ORM).
    customer = models.OneToOneField(
        "customers.Customer",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="rfm",
        db_constraint=False,
    )
    as_of = models.DateField()
    recency_days = models.IntegerField()
    frequency = models.IntegerField(help_text="Purchase days, or orders when order IDs exist.")
    monetary_total = models.FloatField()
    monetary_mean = models.FloatField()
    tenure_days = models.IntegerField()
    interpurchase_days = models.FloatField(null=True, blank=True)
    r_score = models.PositiveSmallIntegerField()
    f_score = models.PositiveSmallIntegerField()
    m_score = models.PositiveSmallIntegerField()
    group = models.CharField(max_length=40)

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.group}"


class ClvRun(models.Model):
    """A fitted lifetime-value model (BG/NBD + Gamma-Gamma), versioned like a training run:
    its parameters, its fit, the check on a later period when asked, and activation."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    is_active = models.BooleanField(default=False)
    step = models.CharField(max_length=120, blank=True)
    error = models.TextField(blank=True)
    calibration_end = models.DateField(null=True, blank=True)
    observation_end = models.DateField(null=True, blank=True)
    horizon_days = models.PositiveIntegerField(default=365)
    unit = models.CharField(max_length=10, default="weeks")
    parameters = models.JSONField(default=dict, blank=True)  # r, alpha, a, b, p, q, v
    log_likelihood = models.FloatField(null=True, blank=True)
    customers = models.PositiveIntegerField(default=0)
    repeat_customers = models.PositiveIntegerField(default=0)
    holdout = models.JSONField(default=dict, blank=True)  # the later-period check
    progress = models.PositiveSmallIntegerField(default=0)
    # Cumulative repeat purchases by week, actual and as the fitted model expects them.
    tracking = models.JSONField(default=dict, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Beaten by the worker while it fits, and when its task was re-sent because no worker
    # claimed it (purchases.recovery: the same guarantees as a training run).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_clv"
            )
        ]

    def __str__(self) -> str:
        return f"CLV run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class CustomerValue(models.Model):
    """A customer's expected future under the active CLV run."""

    customer = models.OneToOneField(  # no database constraint: see CustomerRfm
        "customers.Customer",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="value",
        db_constraint=False,
    )
    # No database constraint either: a million rows are written together, and PostgreSQL
    # checked the key of each at commit (6 s of a 10-million-purchase run); the run is the
    # one just written, and deleting it still deletes its values (the ORM).
    run = models.ForeignKey(ClvRun, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    p_alive = models.FloatField()
    # The repeat purchase days (BG/NBD's x) the figures rest on: 0 for a one-time buyer,
    # whose P(alive) is 1 by the model's definition (see purchases.selectors).
    repeat_purchases = models.PositiveIntegerField(default=0)
    expected_purchases = models.FloatField()
    expected_value = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.expected_value}"


class PurchaseImport(models.Model):
    """An order log uploaded on the page and imported by a worker in the background.

    The file waits under ``stored_path`` (a name the site chose, never the user's) until the
    worker has read it; the choices made on the page (columns, header, date format) are in
    ``options``. Progress and the outcome are written here for the status page."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    file_name = models.CharField(max_length=255)
    stored_path = models.CharField(max_length=1000)
    options = models.JSONField(default=dict, blank=True)
    step = models.CharField(max_length=120, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    purchases_added = models.PositiveIntegerField(default=0)
    customers_created = models.PositiveIntegerField(default=0)
    skipped_orders = models.PositiveIntegerField(default=0)
    rfm_customers = models.PositiveIntegerField(default=0)
    rfm_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    source = models.ForeignKey(
        PurchaseFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # See ClvRun: a silent worker's import is failed, a lost queue message re-sent.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(null=True, blank=True)
    # Failed without the import having run to its end (worker lost, never picked up): the
    # kept file can be imported again from the status page.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def can_retry(self) -> bool:
        """Failed before importing anything, with the file still kept for another try."""
        return (
            self.status == self.Status.FAILED
            and bool(self.stored_path)
            and os.path.exists(self.stored_path)
        )

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class RfmStrategy(models.Model):
    """A marketer's wording of an RFM group's strategy; a group without a row has the
    default of purchases.rfm (the defaults stay in code, so they can improve later)."""

    group = models.CharField(max_length=40, unique=True)
    description = models.TextField(blank=True)
    actions = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"strategy of {self.group}"
