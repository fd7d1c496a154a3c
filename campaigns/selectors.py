"""Reads for the campaign pages, the report command and the API: counts per stratum and
group, and the lift and ROI built from them (campaigns.stats)."""

from __future__ import annotations

from django.db.models import Count, F, FloatField, Q, Sum, Value
from django.db.models.functions import Coalesce

from campaigns import stats
from campaigns.models import Campaign, CampaignMember
from campaigns.stats import EMPTY, Difference, GroupCounts, Lift

TREATMENT, CONTROL = CampaignMember.Group.TREATMENT, CampaignMember.Group.CONTROL


def campaign_counts(*, campaign: Campaign, strata: list[str] | None = None) -> dict:
    """{(stratum, group): GroupCounts}; members without an outcome count as not converted
    with no revenue."""
    members = CampaignMember.objects.filter(campaign=campaign)
    if strata is not None:
        members = members.filter(stratum__in=strata)
    revenue = Coalesce(F("outcome__revenue"), Value(0.0), output_field=FloatField())
    rows = members.values("stratum", "group").annotate(
        customers=Count("pk"),
        conversions=Count("pk", filter=Q(outcome__converted=True)),
        revenue=Sum(revenue),
        squares=Sum(revenue * revenue),
    )
    return {
        (r["stratum"], r["group"]): GroupCounts(
            r["customers"], r["conversions"], float(r["revenue"] or 0), float(r["squares"] or 0)
        )
        for r in rows
    }


def _percent_points(value: float) -> str:
    return f"{value * 100:+.1f}".replace("-", "−")


def _money(value: float) -> str:
    sign = "−" if value < 0 else ""
    return f"{sign}{abs(value):,.2f}"


def conversion_words(difference: Difference | None, lift: Lift) -> str:
    """The conversion lift in one sentence: significant or not, in words."""
    if difference is None:
        return "No control group (or no treatment group): the lift cannot be measured."
    interval = (
        f"95 % CI {_percent_points(difference.low)} to {_percent_points(difference.high)} points"
    )
    points = f"{_percent_points(difference.estimate)} points ({interval})"
    if difference.significant:
        return f"{points}: significant, the interval does not include zero."
    text = f"{points}: not significant, the interval includes zero."
    if difference.needed:
        treatment, control = difference.needed
        text += (
            f" Detecting a difference of {abs(difference.estimate) * 100:.1f} points with 80 % "
            f"power would take about {treatment:,} customers in treatment and {control:,} in "
            f"control at this split (this had {lift.treatment.customers:,} and "
            f"{lift.control.customers:,})."
        )
    else:
        text += " Both groups converted at the same rate."
    return text


def revenue_words(difference: Difference | None) -> str:
    if difference is None:
        return "Too few customers in a group (two or more each) for a revenue interval."
    interval = f"95 % CI {_money(difference.low)} to {_money(difference.high)}"
    text = f"{_money(difference.estimate)} per customer ({interval})"
    if difference.significant:
        return f"{text}: significant."
    text += ": not significant, the interval includes zero."
    if difference.needed:
        treatment, control = difference.needed
        text += (
            f" About {treatment:,} customers in treatment and {control:,} in control would "
            "detect it with 80 % power."
        )
    return text


def _lift_json(lift: Lift) -> dict:
    def group(counts: GroupCounts) -> dict:
        return {
            "customers": counts.customers,
            "conversions": counts.conversions,
            "conversion_rate": counts.rate,
            "revenue": round(counts.revenue, 4),
            "revenue_per_customer": counts.revenue_per_customer,
        }

    def difference(d: Difference | None) -> dict | None:
        if d is None:
            return None
        return {
            "estimate": d.estimate,
            "low": d.low,
            "high": d.high,
            "significant": d.significant,
            "needed_for_80_percent_power": (
                {"treatment": d.needed[0], "control": d.needed[1]} if d.needed else None
            ),
        }

    return {
        "treatment": group(lift.treatment),
        "control": group(lift.control),
        "conversion_difference": difference(lift.conversion),
        "revenue_per_customer_difference": difference(lift.revenue),
        "incremental_conversions": lift.incremental_conversions,
        "incremental_revenue": lift.incremental_revenue,
        "incremental_revenue_interval": (
            [lift.incremental_revenue_low, lift.incremental_revenue_high]
            if lift.incremental_revenue is not None
            else None
        ),
        "cost": lift.cost,
        "roi": lift.roi,
        "roi_interval": list(lift.roi_interval) if lift.roi_interval else None,
    }


def campaign_report(*, campaign: Campaign) -> dict:
    """Per stratum (segment or RFM group) and in total: the groups, the differences with
    their 95 % intervals, incremental revenue, cost and ROI. Every stratum has the same
    control share, so the total compares like with like."""
    counts = campaign_counts(campaign=campaign)
    cost = float(campaign.cost_per_contact)
    rows = []
    total_t, total_c = EMPTY, EMPTY
    for info in campaign.strata:
        t = counts.get((info["key"], TREATMENT), EMPTY)
        c = counts.get((info["key"], CONTROL), EMPTY)
        total_t, total_c = total_t + t, total_c + c
        rows.append({"stratum": info, "lift": stats.lift(t, c, cost)})
    total = {"lift": stats.lift(total_t, total_c, cost)}
    for row in [*rows, total]:
        row["conversion_words"] = conversion_words(row["lift"].conversion, row["lift"])
        row["revenue_words"] = revenue_words(row["lift"].revenue)
    return {"rows": rows, "total": total, "has_outcomes": campaign.last_import is not None}


def campaign_report_json(*, campaign: Campaign) -> dict:
    report = campaign_report(campaign=campaign)
    last = campaign.last_import
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "channel": campaign.channel,
        "control_share": campaign.control_share,
        "cost_per_contact": float(campaign.cost_per_contact),
        "seed": campaign.seed,
        "run_id": campaign.run_id,
        "frozen_at": campaign.created_at.isoformat(),
        "frozen_by": campaign.created_by.get_username() if campaign.created_by else None,
        "outcomes": (
            {
                "source": last.source,
                "imported_at": last.imported_at.isoformat(),
                "imported_by": last.imported_by.get_username() if last.imported_by else None,
                "counted": last.counted,
                "outsiders": last.outsiders,
            }
            if last
            else None
        ),
        "methods": {"conversion": stats.METHOD_CONVERSION, "revenue": stats.METHOD_REVENUE},
        "segments": [
            {
                "segment": row["stratum"]["label"],
                "stratum": row["stratum"]["key"],
                "strategy_id": row["stratum"]["strategy_id"],
                **_lift_json(row["lift"]),
                "verdict": row["conversion_words"],
            }
            for row in report["rows"]
        ],
        "total": {
            **_lift_json(report["total"]["lift"]),
            "verdict": report["total"]["conversion_words"],
        },
    }


SUMMARY_CAMPAIGNS = 3


def segment_campaign_summary(*, segment_id: int) -> dict | None:
    """The last three measured campaigns that targeted the segment, pooled: the conversion
    difference with its interval (None before any)."""
    key = f"segment:{segment_id}"
    measured = (
        Campaign.objects.filter(target=Campaign.Target.SEGMENTS, outcome_imports__isnull=False)
        .distinct()
        .only("id", "strata", "created_at")
        .order_by("-created_at", "-id")[:200]
    )
    campaigns = [c for c in measured if any(s["key"] == key for s in c.strata)]
    campaigns = campaigns[:SUMMARY_CAMPAIGNS]
    if not campaigns:
        return None
    treatment, control = EMPTY, EMPTY
    for campaign in campaigns:
        counts = campaign_counts(campaign=campaign, strata=[key])
        treatment = treatment + counts.get((key, TREATMENT), EMPTY)
        control = control + counts.get((key, CONTROL), EMPTY)
    difference = stats.proportion_difference(
        treatment.conversions, treatment.customers, control.conversions, control.customers
    )
    return {"campaigns": campaigns, "difference": difference}


def summary_text(summary: dict) -> str:
    """ "last 3 campaigns: +4.1 points, 95 % CI 1.2 to 7.0"."""
    n = len(summary["campaigns"])
    head = "last campaign" if n == 1 else f"last {n} campaigns"
    d = summary["difference"]
    if d is None:
        return f"{head}: no control group to compare with"
    text = (
        f"{head}: {_percent_points(d.estimate)} points, "
        f"95 % CI {_percent_points(d.low)} to {_percent_points(d.high)}"
    )
    return text if d.significant else text + " (not significant)"
