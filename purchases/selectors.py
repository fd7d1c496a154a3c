"""Reads of purchase histories shared with the rest of the site."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Avg, Case, Count, Q, Sum, When

from clustering.models import Cluster, ClusterAssignment
from customers.catalogue import SOURCE_PURCHASES, Feature
from purchases.charts import tracking_chart
from purchases.models import ClvRun, CustomerRfm, CustomerValue, RfmStrategy
from purchases.rfm import GROUP_BY_KEY, GROUPS, RfmGroup

# The RFM values as catalogue features: keys, labels and the column that holds each.
RFM_FEATURES: tuple[Feature, ...] = (
    Feature(
        "rfm_recency",
        "Days since last purchase",
        "recency",
        unit=" days",
        minimum=0,
        whole=True,
        source=SOURCE_PURCHASES,
        help="Recency: days from the last purchase to the reference date.",
        log_allowed=True,
        column="recency_days",
        high_word="lapsed",
        low_word="recent",
    ),
    Feature(
        "rfm_frequency",
        "Purchases (history)",
        "purchases",
        minimum=0,
        whole=True,
        source=SOURCE_PURCHASES,
        help="Frequency: orders, or purchase days when the file has no order IDs.",
        log_allowed=True,
        column="frequency",
        high_word="frequent",
        low_word="rare buyers",
    ),
    Feature(
        "rfm_monetary",
        "Total spent",
        "total spent",
        source=SOURCE_PURCHASES,
        help="Monetary value: the sum of all purchases, returns subtracted.",
        log_allowed=True,
        column="monetary_total",
        high_word="big spenders",
        low_word="small spenders",
    ),
    Feature(
        "rfm_mean_spend",
        "Mean spend per purchase",
        "mean spend",
        source=SOURCE_PURCHASES,
        help="The total spent divided by the number of purchases.",
        log_allowed=True,
        column="monetary_mean",
        high_word="large baskets",
        low_word="small baskets",
    ),
    Feature(
        "rfm_tenure",
        "Days since first purchase",
        "tenure",
        unit=" days",
        minimum=0,
        whole=True,
        source=SOURCE_PURCHASES,
        help="Tenure: days from the first purchase to the reference date.",
        log_allowed=True,
        column="tenure_days",
        high_word="long-standing",
        low_word="new",
    ),
    Feature(
        "rfm_interpurchase",
        "Days between purchases",
        "days between purchases",
        unit=" days",
        minimum=0,
        source=SOURCE_PURCHASES,
        help="The mean number of days between purchase days (two or more needed).",
        log_allowed=True,
        column="interpurchase_days",
        high_word="slow to return",
        low_word="quick to return",
    ),
)


def rfm_features() -> tuple[Feature, ...]:
    """The RFM features, once any customer has them."""
    return RFM_FEATURES if CustomerRfm.objects.exists() else ()


@dataclass(frozen=True)
class Strategy:
    """What to do about an RFM group: the marketers' wording, else the default."""

    description: str
    actions: tuple[str, ...]
    edited: bool = False


def rfm_strategies() -> dict[str, Strategy]:
    """Every group's strategy (one query)."""
    stored = {s.group: s for s in RfmStrategy.objects.all()}
    return {
        g.key: Strategy(stored[g.key].description, tuple(stored[g.key].actions), True)
        if g.key in stored
        else Strategy(g.description, g.actions)
        for g in GROUPS
    }


def rfm_strategy_instance(*, group: RfmGroup) -> RfmStrategy:
    """The stored strategy of a group, or an unsaved one holding the default."""
    return RfmStrategy.objects.filter(group=group.key).first() or RfmStrategy(
        group=group.key, description=group.description, actions=list(group.actions)
    )


def rfm_strategy_text(strategy: Strategy) -> str:
    return " | ".join([strategy.description, *strategy.actions]).strip(" |")


@dataclass(frozen=True)
class GroupRow:
    group: RfmGroup
    strategy: Strategy
    customers: int
    share: float
    expected_value: float | None  # total expected value of the next year (active CLV run)
    likely_lost: float | None  # share with P(alive) below one half
    mean_value: float | None = None  # expected value per customer
    p_alive: float | None = None  # mean probability of still buying


def rfm_overview(*, run=None) -> dict | None:
    """The RFM groups with their sizes, strategies and lifetime value, and (with a run)
    how the run's segments spread over them; None before any purchase history."""
    counts = dict(CustomerRfm.objects.values_list("group").annotate(n=Count("pk")))
    if not counts:
        return None
    total = sum(counts.values())
    values = _value_by_group()
    strategies = rfm_strategies()
    rows = [
        GroupRow(
            g,
            strategies[g.key],
            counts.get(g.key, 0),
            counts.get(g.key, 0) / total,
            *values.get(g.key, (None, None, None, None)),
        )
        for g in GROUPS
    ]
    return {
        "groups": rows,
        "customers": total,
        "as_of": CustomerRfm.objects.first().as_of,
        "cross": _cross_table(run) if run else None,
    }


LIKELY_LOST_BELOW = 0.5  # P(alive) under which a customer counts as likely lost


# BG/NBD lets a customer drop out only after a repeat purchase, so a one-time buyer is
# "still buying" with probability 1 whatever their recency: P(alive) and "likely lost"
# are averaged over repeat buyers only, or a group of lapsed one-timers would read 100 %.
# A repeat buyer is one with a repeat purchase day in the fit itself (x > 0), not by the
# RFM frequency, which counts orders when there are order IDs (two on one day: x = 0).
def _repeat_buyers(value: str = "") -> Q:
    return Q(**{f"{value}repeat_purchases__gt": 0})


def _value_columns(value: str = "") -> dict:
    repeat = _repeat_buyers(value)
    return {
        "total": Sum(f"{value}expected_value"),
        "lost": Avg(
            Case(When(**{f"{value}p_alive__lt": LIKELY_LOST_BELOW}, then=1.0), default=0.0),
            filter=repeat,
        ),
        "mean": Avg(f"{value}expected_value"),
        "alive": Avg(f"{value}p_alive", filter=repeat),
    }


def _value_by_group() -> dict[str, tuple[float, float, float, float]]:
    rows = (
        CustomerValue.objects.values("customer__rfm__group")
        .annotate(**_value_columns())
        .values_list("customer__rfm__group", "total", "lost", "mean", "alive")
    )
    return {group: tuple(values) for group, *values in rows if group}


@dataclass(frozen=True)
class SegmentValue:
    """Lifetime value of a segment's customers under the active CLV run."""

    customers: int
    total: float
    mean: float
    p_alive: float | None  # over repeat buyers (None when there is none)
    likely_lost: float | None


def cluster_value(*, cluster_id: int) -> SegmentValue | None:
    """The segment's expected value (total and per customer), mean P(alive) and share
    likely lost; None without an active CLV run or without valued customers."""
    members = ClusterAssignment.objects.filter(cluster_id=cluster_id).values("customer_id")
    row = CustomerValue.objects.filter(customer_id__in=members).aggregate(
        n=Count("pk"), **_value_columns()
    )
    if not row["n"]:
        return None
    return SegmentValue(
        row["n"], row["total"] or 0.0, row["mean"] or 0.0, row["alive"], row["lost"]
    )


def _cross_table(run) -> dict:
    """Customers of each of the run's segments in each RFM group (the database counts)."""
    pairs = (
        ClusterAssignment.objects.filter(run=run)
        .values("cluster_id", "customer__rfm__group")
        .annotate(n=Count("pk"))
        .values_list("cluster_id", "customer__rfm__group", "n")
    )
    counts = {(cluster, group): n for cluster, group, n in pairs}
    clusters = list(Cluster.objects.filter(run=run).select_related("segment").order_by("-size"))
    return {
        "groups": GROUPS,
        "rows": [
            {"cluster": c, "cells": [counts.get((c.id, g.key), 0) for g in GROUPS]}
            for c in clusters
        ],
    }


def customer_purchase_summary(*, customer_pk: int) -> dict | None:
    """A customer's RFM values, scores, group and lifetime value (None without purchases)."""
    rfm = CustomerRfm.objects.filter(customer_id=customer_pk).first()
    if rfm is None:
        return None
    return _summary(rfm, CustomerValue.objects.filter(customer_id=customer_pk).first())


def _summary(rfm: CustomerRfm, value: CustomerValue | None) -> dict:
    group = GROUP_BY_KEY.get(rfm.group)
    return {
        "as_of": rfm.as_of.isoformat(),
        "recency_days": rfm.recency_days,
        "frequency": rfm.frequency,
        "monetary_total": round(rfm.monetary_total, 2),
        "monetary_mean": round(rfm.monetary_mean, 2),
        "tenure_days": rfm.tenure_days,
        "interpurchase_days": rfm.interpurchase_days,
        "scores": {"r": rfm.r_score, "f": rfm.f_score, "m": rfm.m_score},
        "group": {"key": rfm.group, "name": group.name if group else rfm.group},
        "lifetime_value": None
        if value is None
        else {
            "p_alive": round(value.p_alive, 4),
            "expected_purchases": round(value.expected_purchases, 3),
            "expected_value": None
            if value.expected_value is None
            else round(value.expected_value, 2),
            "clv_run_id": value.run_id,
        },
    }


# The RFM columns of a segment's member table and export: key, label, CustomerRfm field.
RFM_MEMBER_COLUMNS = (
    ("rfm_r", "R", "r_score"),
    ("rfm_f", "F", "f_score"),
    ("rfm_m", "M", "m_score"),
    ("rfm_group", "RFM group", "group"),
)


def rfm_exists() -> bool:
    return CustomerRfm.objects.exists()


def rfm_value(customer, field: str):
    """A customer's RFM value (a group by its name), None without purchases. Reads the
    customer's ``rfm`` as the query selected it (select_related), so no query per row."""
    try:
        rfm = customer.rfm
    except CustomerRfm.DoesNotExist:
        return None
    value = getattr(rfm, field)
    return group_name(value) if field == "group" else value


def group_name(key: str | None) -> str | None:
    group = GROUP_BY_KEY.get(key) if key else None
    return group.name if group else key


def rfm_export_columns() -> list[tuple[str, str]]:
    """(CSV header, CustomerRfm field) of a member export: the RFM values, then the scores
    and the group; none before any purchase history."""
    if not rfm_exists():
        return []
    values = [(f.key, f.column) for f in RFM_FEATURES]
    return values + [(key, field) for key, _label, field in RFM_MEMBER_COLUMNS]


def clv_run_context(*, run: ClvRun) -> dict:
    """A CLV run's page: the run, the active one, and its cumulative chart (the check on
    the later period when there is one, else the fit against the whole history)."""
    points = run.holdout if run.holdout.get("weeks") else run.tracking
    chart = None
    if points.get("weeks"):
        chart = tracking_chart(
            points["weeks"],
            points["cumulative_actual"],
            points["cumulative_predicted"],
            run.holdout.get("calibration_weeks"),
        )
    return {
        "run": run,
        "active_run": ClvRun.objects.filter(is_active=True).first(),
        "chart": chart,
        "chart_is_check": bool(run.holdout.get("weeks")),
    }


def purchase_summaries(*, customer_ids: list[str]) -> dict[str, dict]:
    """customer_purchase_summary for many customers by their IDs, in two queries (the
    prediction API's batch); customers without purchases are left out."""
    rfms = CustomerRfm.objects.filter(customer__customer_id__in=set(customer_ids)).select_related(
        "customer"
    )
    found = {rfm.customer_id: rfm for rfm in rfms}
    values = {v.customer_id: v for v in CustomerValue.objects.filter(customer_id__in=found)}
    return {rfm.customer.customer_id: _summary(rfm, values.get(pk)) for pk, rfm in found.items()}


def segment_purchase_summaries(*, run) -> dict[int, dict]:
    """Per segment of ``run`` (by segment id): its customers by RFM group and its lifetime
    value under the active CLV run; empty before any purchase history."""
    if not rfm_exists():
        return {}
    members = ClusterAssignment.objects.filter(run=run)
    groups: dict[int, dict[str, int]] = {}
    for segment_id, group, n in (
        members.values("cluster__segment_id", "customer__rfm__group")
        .annotate(n=Count("pk"))
        .values_list("cluster__segment_id", "customer__rfm__group", "n")
    ):
        groups.setdefault(segment_id, {})[group or "no_purchases"] = n
    values = {
        row["cluster__segment_id"]: row
        for row in members.filter(customer__value__isnull=False)
        .values("cluster__segment_id")
        .annotate(
            customers=Count("pk"),
            **_value_columns("customer__value__"),
        )
    }
    return {
        segment_id: {
            "rfm_groups": counts,
            "lifetime_value": _value_json(values.get(segment_id)),
        }
        for segment_id, counts in groups.items()
    }


def _value_json(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {
        "customers": row["customers"],
        "expected_value_total": round(row["total"] or 0.0, 2),
        "expected_value_mean": round(row["mean"] or 0.0, 2),
        # Over repeat buyers (None when there is none): see _value_columns.
        "p_alive_mean": None if row["alive"] is None else round(row["alive"], 4),
        "likely_lost_share": None if row["lost"] is None else round(row["lost"], 4),
    }
