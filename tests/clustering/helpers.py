"""Helpers of the clustering tests: demo data and in-process trainings."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.management import call_command
from django.db.models.functions import Now

from clustering.models import TrainingRun
from clustering.services import (
    TrainingParams,
    training_run_claim,
    training_run_execute,
    training_run_start,
)
from customers.catalogue import BUILT_IN_CATALOGUE
from customers.models import Customer

# The campaign CSV's columns, spelled out: marketers' tools read them by these names. The
# customer's own columns come in the import format's (catalogue) order, sex after the numbers.
CAMPAIGN_HEADER = [
    "customer_id",
    "age",
    "annual_income",
    "spending_score",
    "purchase_frequency",
    "sex",
    "segment",
    "confidence",
    "band",
    "strategy",
    "segment_warning",
]
# The four numbers every customer table has, the features a default run trains on.
FEATURES = tuple(f.key for f in BUILT_IN_CATALOGUE.clusterable())
PLAYBOOK = {"High-Value Customers", "Budget Shoppers", "Potential Targets", "Loyal Customers"}


def make_customers(count: int, *, seed: int) -> int:
    """Demo customers with four planted personas (IDs DEMO-0000001 onwards)."""
    call_command("generate_customers", count=count, seed=seed, stdout=io.StringIO())
    return Customer.objects.count()


def train_run(**params) -> TrainingRun:
    """Start, claim and train a run in this process, as the worker would; any outcome."""
    run = training_run_start(params=TrainingParams(**params), enqueue=False)
    assert training_run_claim(run_id=run.id)
    return training_run_execute(run_id=run.id)


def train(**params) -> TrainingRun:
    """Train in this process and return the run, which must have succeeded."""
    run = train_run(**params)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return run


def running_run(*, silent_for: timedelta) -> TrainingRun:
    """A running run whose worker last beat ``silent_for`` ago (by the database's clock)."""
    run = TrainingRun.objects.create(status=TrainingRun.Status.RUNNING)
    TrainingRun.objects.filter(id=run.id).update(heartbeat_at=Now() - silent_for)
    return run


def train_command(*args: str) -> str:
    """`manage.py train --sync ...`; returns what it printed."""
    out = io.StringIO()
    call_command("train", "--sync", *args, stdout=out)
    return out.getvalue()


def segment_of(run: TrainingRun, name: str):
    """The cluster of ``run`` whose segment is called ``name``."""
    return run.clusters.select_related("segment").get(segment__name=name)
