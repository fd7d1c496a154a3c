"""Write the audit trail when segments are saved and runs activated."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from clustering.models import Segment
from clustering.signals import run_activated


@receiver(post_save, sender=Segment, dispatch_uid="audit_strategy_version")
def _segment_saved(sender, instance: Segment, created: bool, raw: bool = False, **kwargs) -> None:
    if raw:  # loading a fixture
        return
    from audit.services import strategy_version_record

    strategy_version_record(segment=instance, created=created)


@receiver(run_activated, dispatch_uid="audit_run_activation")
def _run_activated(sender, run, previous_id, user, **kwargs) -> None:
    from audit.models import RunActivation

    RunActivation.objects.create(run=run, previous_id=previous_id, user=user)
