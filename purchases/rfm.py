"""The named RFM groups of the trade and their default strategies, defined once.

Pure Python. R, F and M scores run from 1 to 5 by quintiles (5 = most recent, most
frequent, highest spending); a group is chosen from the R and F scores by the first rule
that matches, in the order below (the mapping widely used in RFM practice, with "Lost"
taken out of "Hibernating" for customers at the bottom on both).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RfmGroup:
    key: str
    name: str
    r_scores: tuple[int, ...]
    f_scores: tuple[int, ...]
    description: str
    actions: tuple[str, ...]


GROUPS: tuple[RfmGroup, ...] = (
    RfmGroup(
        "champions",
        "Champions",
        (5,),
        (4, 5),
        "Bought recently, buy often and spend the most.",
        (
            "Reward them: early access, exclusive previews",
            "Ask for reviews and referrals",
            "Do not discount: they buy anyway",
        ),
    ),
    RfmGroup(
        "loyal",
        "Loyal Customers",
        (3, 4),
        (4, 5),
        "Buy regularly and respond to promotions.",
        (
            "Upsell higher-value products",
            "Enrol them in the loyalty programme",
            "Ask for feedback",
        ),
    ),
    RfmGroup(
        "potential_loyalists",
        "Potential Loyalists",
        (4, 5),
        (2, 3),
        "Recent customers who bought more than once.",
        (
            "Offer membership or a loyalty programme",
            "Recommend products that go with what they bought",
        ),
    ),
    RfmGroup(
        "new",
        "New Customers",
        (5,),
        (1,),
        "Bought for the first time, recently.",
        (
            "Welcome them and help them get started",
            "Give a reason for a second purchase soon",
        ),
    ),
    RfmGroup(
        "promising",
        "Promising",
        (4,),
        (1,),
        "Recent first-time buyers who have not come back yet.",
        ("Build brand awareness", "Offer a small incentive for a second purchase"),
    ),
    RfmGroup(
        "need_attention",
        "Need Attention",
        (3,),
        (3,),
        "Above-average recency and frequency, but slipping.",
        ("Send limited-time offers", "Recommend based on past purchases"),
    ),
    RfmGroup(
        "about_to_sleep",
        "About to Sleep",
        (3,),
        (1, 2),
        "Below-average recency and frequency: they will be lost without a reason to return.",
        ("Share popular products", "Offer a discount on a category they bought"),
    ),
    RfmGroup(
        "cant_lose",
        "Can't Lose Them",
        (1, 2),
        (5,),
        "Used to buy often and much, but not for a long time.",
        (
            "Win them back with renewals or new products",
            "Talk to them: find out what went wrong",
        ),
    ),
    RfmGroup(
        "at_risk",
        "At Risk",
        (1, 2),
        (3, 4),
        "Bought often a long time ago.",
        ("Send personal emails to reconnect", "Offer renewals and helpful resources"),
    ),
    RfmGroup(
        "lost",
        "Lost",
        (1,),
        (1,),
        "Lowest recency and frequency.",
        ("Revive interest with an outreach campaign", "Otherwise leave them out"),
    ),
    RfmGroup(
        "hibernating",
        "Hibernating",
        (1, 2),
        (1, 2),
        "Last purchase long ago, few purchases.",
        ("Offer other relevant products and special discounts", "Recreate brand value"),
    ),
)
GROUP_BY_KEY = {group.key: group for group in GROUPS}
FALLBACK = "hibernating"


def group_for(r_score: int, f_score: int) -> RfmGroup:
    """The first group whose R and F scores both match (every pair has one)."""
    for group in GROUPS:
        if r_score in group.r_scores and f_score in group.f_scores:
            return group
    return GROUP_BY_KEY[FALLBACK]


def group_case_sql(r_column: str, f_column: str) -> str:
    """The same rule as a SQL CASE expression (the database scores a million customers)."""
    branches = [
        f"WHEN {r_column} IN ({', '.join(map(str, g.r_scores))}) "
        f"AND {f_column} IN ({', '.join(map(str, g.f_scores))}) THEN '{g.key}'"
        for g in GROUPS
    ]
    return f"CASE {' '.join(branches)} ELSE '{FALLBACK}' END"
