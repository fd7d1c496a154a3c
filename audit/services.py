"""Writes of the audit trail: strategy versions and restoring one."""

from __future__ import annotations

from django.db import transaction

from audit.models import StrategyVersion
from clustering.models import Segment


class RestoreRefused(Exception):
    """The version cannot be restored (its name is now another segment's)."""


def strategy_version_record(*, segment: Segment, created: bool = False) -> StrategyVersion:
    """Record the segment's strategy as a new version unless the latest one is the same.

    The author is the segment's ``updated_by`` (the site and the admin set it on every
    edit); a segment a training creates has none."""
    latest = segment.strategy_versions.order_by("-number").first()
    if latest is not None and latest.same_strategy(segment):
        return latest
    restored_from = getattr(segment, "_restored_from", None)
    rewritten = getattr(segment, "_written_by_training", False)
    if restored_from:
        note = f"restored version {restored_from.number}"
    elif created:
        note = "created by a training"
    elif rewritten:
        note = "rewritten from the new active run's centre"
    else:
        note = ""
    return StrategyVersion.objects.create(
        segment=segment,
        number=(latest.number + 1) if latest else 1,
        name=segment.name,
        description=segment.description,
        actions=list(segment.actions),
        author_id=None if created or rewritten else segment.updated_by_id,
        restored_from=restored_from,
        note=note,
    )


def strategy_version_current(*, segment: Segment) -> StrategyVersion:
    """The version the segment's strategy is now (recorded first if it never was)."""
    return strategy_version_record(segment=segment)


@transaction.atomic
def strategy_restore(*, version: StrategyVersion, user) -> Segment:
    """Make an earlier version the segment's strategy again; recorded as a new version."""
    segment = Segment.objects.select_for_update().get(id=version.segment_id)
    if Segment.objects.filter(name=version.name).exclude(id=segment.id).exists():
        raise RestoreRefused(
            f"Another segment is now called “{version.name}”: rename it first, then restore."
        )
    segment.name = version.name
    segment.description = version.description
    segment.actions = list(version.actions)
    segment.updated_by = user
    segment._restored_from = version
    segment.save()
    return segment
