"""Who changed what and when: every version of a segment's strategy, and every activation
of a run (retrains, and rollbacks to an earlier run).

A small model of our own rather than django-simple-history: only the strategy (name,
description, actions) is versioned, not the flags a retrain flips on every segment, so
the history reads as the marketers' edits; the version's number is the strategy ID that
campaign exports carry; and no migration is needed in the clustering app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StrategyVersion(models.Model):
    segment = models.ForeignKey(
        "clustering.Segment", on_delete=models.CASCADE, related_name="strategy_versions"
    )
    number = models.PositiveIntegerField(help_text="1, 2, 3... per segment.")
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    actions = models.JSONField(default=list, blank=True)
    # None: written by a training (a new segment with its default strategy), or a version
    # recorded for a strategy that existed before versions were kept.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    restored_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["segment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "number"], name="strategy_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name}, version {self.number}"

    @property
    def strategy_id(self) -> str:
        """The ID campaign exports carry: segment and version ("S3v2")."""
        return f"S{self.segment_id}v{self.number}"

    def same_strategy(self, segment) -> bool:
        return (self.name, self.description, list(self.actions)) == (
            segment.name,
            segment.description,
            list(segment.actions),
        )


class RunActivation(models.Model):
    """A run became the active model: after its training, or by a person (a rollback when
    the run is older than the one it replaced)."""

    run = models.ForeignKey("clustering.TrainingRun", on_delete=models.CASCADE, related_name="+")
    previous = models.ForeignKey(
        "clustering.TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"run {self.run_id} activated at {self.at}"

    @property
    def is_rollback(self) -> bool:
        return self.previous_id is not None and self.run_id < self.previous_id
