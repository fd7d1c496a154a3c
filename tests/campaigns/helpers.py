"""Helpers of the campaign tests: campaigns on the trained demo model, outcome files."""

from __future__ import annotations

import io
from decimal import Decimal

import numpy as np

from campaigns.models import Campaign, CampaignMember
from campaigns.services import CampaignSpec, campaign_create
from clustering.models import TrainingRun


def two_segments(run: TrainingRun):
    """The run's two largest segments."""
    clusters = list(run.clusters.select_related("segment").order_by("-size", "index")[:2])
    return [c.segment for c in clusters]


def make_campaign(run: TrainingRun, *, name="Spring mail", user=None, seed=11, **fields):
    segments = two_segments(run)
    spec = CampaignSpec(
        name=name,
        targets=tuple(s.id for s in segments),
        control_share=fields.pop("control_share", 0.1),
        cost_per_contact=Decimal(fields.pop("cost_per_contact", "0.5")),
        seed=seed,
        **fields,
    )
    return campaign_create(spec=spec, user=user)


def planted_outcomes(campaign: Campaign, effects: dict[str, tuple[float, float]], *, seed=1):
    """Outcome CSV text: per stratum label, (treatment rate, control rate); converters spend
    100 +- 20. Only converters get a row, as campaign tools often report."""
    rng = np.random.default_rng(seed)
    labels = {s["key"]: s["label"] for s in campaign.strata}
    lines = ["customer_id,converted,revenue,campaign_code"]
    members = campaign.members.values_list("customer__customer_id", "stratum", "group")
    for customer_id, stratum, group in members.order_by("customer__customer_id"):
        treated, control = effects[labels[stratum]]
        rate = treated if group == CampaignMember.Group.TREATMENT else control
        if rng.random() < rate:
            lines.append(f"{customer_id},yes,{100 + rng.normal(0, 20):.2f},X1")
    return "\n".join(lines) + "\n"


def as_file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def swap_customers(run: TrainingRun, count: int = 20):
    """``count`` customers of each of the run's two largest segments swap their values, so
    a retrain moves them between the two; returns those two clusters."""
    from customers.models import Customer

    a, b = run.clusters.select_related("segment").order_by("-size")[:2]
    fields = ("age", "annual_income", "spending_score", "purchase_frequency")
    movers_a = list(Customer.objects.filter(pk__in=a.assignments.values("customer_id"))[:count])
    movers_b = list(Customer.objects.filter(pk__in=b.assignments.values("customer_id"))[:count])
    for x, y in zip(movers_a, movers_b):
        for name in fields:
            first, second = getattr(x, name), getattr(y, name)
            setattr(x, name, second)
            setattr(y, name, first)
    Customer.objects.bulk_update(movers_a + movers_b, fields)
    return a, b
