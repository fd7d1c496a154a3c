"""Signals other apps listen to (the audit trail)."""

from django.dispatch import Signal

# Sent inside the activation's transaction: run (the TrainingRun now active), previous_id
# (the run it replaced, or None) and user (None: a command or a retrain without a person).
run_activated = Signal()
