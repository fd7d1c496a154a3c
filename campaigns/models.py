"""Campaigns that measure themselves: a frozen audience split into treatment and control
by a stored seeded draw, the outcomes that come back, and who did what.

The audience is kept per campaign (CampaignMember), not read from a run's assignments
later: runs are retrained and their assignments pruned, while a campaign must be
measured on exactly the customers it drew.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

CAMPAIGN_NAME_MAX_LENGTH = 120


class Campaign(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        POST = "post", "Post"
        PHONE = "phone", "Phone"
        ADS = "ads", "Online ads"
        OTHER = "other", "Other"

    class Target(models.TextChoices):
        SEGMENTS = "segments", "Segments"
        RFM = "rfm", "RFM groups"

    name = models.CharField(max_length=CAMPAIGN_NAME_MAX_LENGTH, unique=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    target = models.CharField(max_length=10, choices=Target.choices, default=Target.SEGMENTS)
    # What was asked for, as it was asked: segment ids or RFM group keys, feature ranges
    # {key: [low, high]}, category values and the least confidence (segments only).
    targets = models.JSONField(default=list)
    filters = models.JSONField(default=dict, blank=True)
    categories = models.JSONField(default=dict, blank=True, help_text="{key: [values]}")
    min_confidence = models.FloatField(null=True, blank=True)
    control_share = models.FloatField(default=0.1)
    cost_per_contact = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    seed = models.BigIntegerField(help_text="The draw's seed: the same audience and seed redo it.")
    run = models.ForeignKey(
        "clustering.TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run whose segments the audience was drawn from.",
    )
    # One entry per stratum, in order: key, label, segment id, strategy ID and text, counts.
    strata = models.JSONField(default=list)
    audience = models.PositiveIntegerField(default=0)
    treatment_size = models.PositiveIntegerField(default=0)
    control_size = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the audience froze.")

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("import_outcomes", "Can import a campaign's outcomes")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(control_share__gte=0, control_share__lt=1),
                name="campaign_control_share_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def last_import(self):
        return self.outcome_imports.order_by("-id").first()


class CampaignMember(models.Model):
    class Group(models.TextChoices):
        TREATMENT = "treatment", "Treatment"
        CONTROL = "control", "Control"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    stratum = models.CharField(max_length=60, help_text="segment:<id> or rfm:<group key>.")
    group = models.CharField(max_length=10, choices=Group.choices)
    draw = models.FloatField(help_text="The customer's random number in the draw.")
    confidence = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="campaign_member_unique")
        ]
        indexes = [models.Index(fields=["campaign", "group", "stratum"], name="member_group_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.campaign_id} ({self.group})"


class Outcome(models.Model):
    """What a member did: converted or not, and the revenue (0 when not given)."""

    member = models.OneToOneField(
        CampaignMember, on_delete=models.CASCADE, primary_key=True, related_name="outcome"
    )
    converted = models.BooleanField()
    revenue = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.member_id}: {'converted' if self.converted else 'no'} {self.revenue:g}"


class OutcomeImport(models.Model):
    """An outcomes file (or API call): the newest replaces the outcomes of the ones before."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="outcome_imports")
    source = models.CharField(max_length=255, help_text="The file's name, or 'API'.")
    rows = models.PositiveIntegerField(default=0)
    counted = models.PositiveIntegerField(default=0)
    outsiders = models.PositiveIntegerField(default=0)
    ignored_columns = models.JSONField(default=list, blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source} for campaign {self.campaign_id}"
