"""Reads of purchase histories shared with the rest of the site."""

from __future__ import annotations

from customers.catalogue import SOURCE_PURCHASES, Feature
from purchases.models import CustomerRfm

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
