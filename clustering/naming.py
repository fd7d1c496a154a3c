"""Segment names from centroids: personas when they truly fit, plain descriptions otherwise.

Pure (numpy/scipy only, no Django). Callers hand in the centroids in standard deviations
from the mean (K x n_features), the run's feature keys and, optionally, short labels per
feature ("income", "grocery"); they get one ``ClusterName`` per centroid back.

Rules:

1. A persona (``ARCHETYPES``) applies only when every feature that defines it is in the run
   and every condition holds: "high"/"low" at least ``SD_THRESHOLD`` sd in that direction,
   "not_high"/"not_low" below ``SD_THRESHOLD`` in that direction. "Average Mainstream"
   applies only when every feature of the run is within ``SD_THRESHOLD`` sd. There is no
   "closest match": a segment no persona fits is described instead.
2. The description names the one to three features that set the segment apart most
   (|z| >= ``SD_THRESHOLD``, largest first), highs first: "High grocery and milk, low fresh".
   Its archetype key is a signature of the same facts ("profile:high=grocery,milk;low=fresh"),
   so a retrain that finds the same profile is recognised as the same segment.
3. Names are unique within a run. An optimal assignment over cluster x persona scores, among
   the personas that fit, gives each persona to at most one cluster and prefers the four core
   personas; a cluster left without a persona gets its description; when two clusters still
   share a name the better fitting one keeps it and the others get " 2", " 3", ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

# |z| >= this many standard deviations counts as "high"/"low"; below it is "average".
SD_THRESHOLD = 0.5
# At most this many features make up a descriptive name (rule 2).
MAX_NAME_FEATURES = 3
# A persona's reason lists its own features and at most this many other distinctive ones.
REASON_EXTRA_FEATURES = 3
# Feature key of a condition that applies to every feature of the run.
EVERY_FEATURE = "*"
PROFILE_PREFIX = "profile:"

# (feature, rule) pairs; rule is one of high, low, not_high, not_low, average.
Conditions = tuple[tuple[str, str], ...]
RULES = frozenset({"high", "low", "not_high", "not_low", "average"})


@dataclass(frozen=True)
class Archetype:
    """A persona: conditions are (feature, rule) with rule in high/low/not_high/not_low/
    average; the feature ``EVERY_FEATURE`` ("*") stands for each feature of the run.
    ``core`` marks the four playbook personas, preferred when they fit.

    ``drop_missing`` lets an archetype skip conditions on features the run lacks instead
    of becoming inapplicable. No built-in archetype uses it any more: a persona needs
    every feature that defines it."""

    key: str
    name: str
    conditions: Conditions
    core: bool = False
    drop_missing: bool = False


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype(
        "high_value",
        "High-Value Customers",
        (("annual_income", "high"), ("spending_score", "high")),
        core=True,
    ),
    Archetype(
        "budget",
        "Budget Shoppers",
        (("annual_income", "low"), ("spending_score", "low")),
        core=True,
    ),
    Archetype(
        "potential",
        "Potential Targets",
        (("annual_income", "high"), ("spending_score", "low")),
        core=True,
    ),
    Archetype("loyal", "Loyal Customers", (("purchase_frequency", "high"),), core=True),
    Archetype(
        "young_spenders",
        "Young High Spenders",
        (("age", "low"), ("spending_score", "high"), ("annual_income", "not_high")),
    ),
    Archetype("careful_seniors", "Careful Seniors", (("age", "high"), ("spending_score", "low"))),
    Archetype(
        "impulsive", "Impulse Buyers", (("annual_income", "low"), ("spending_score", "high"))
    ),
    Archetype("occasional", "Occasional Shoppers", (("purchase_frequency", "low"),)),
    Archetype("affluent", "Affluent Customers", (("annual_income", "high"),)),
    Archetype("modest", "Modest Earners", (("annual_income", "low"),)),
    Archetype("mainstream", "Average Mainstream", ((EVERY_FEATURE, "average"),)),
)
MAINSTREAM = "mainstream"

# Assignment scores: a fitting core persona > a fitting other persona > no persona. The sd
# margins (a few units) only break ties inside a tier. Personas that do not fit are never
# assigned (_FORBIDDEN is far below the "no persona" columns, which are always available).
_CORE_FIT, _OTHER_FIT, _NO_PERSONA, _FORBIDDEN = 100.0, 50.0, 0.0, -1e9


@dataclass(frozen=True)
class ClusterName:
    """Name of one segment. ``matched`` is False for a descriptive name (no persona)."""

    archetype: str
    name: str
    reason: str
    matched: bool = True


# --------------------------------------------------------------------------- helpers


def _label(feature: str, labels: Mapping[str, str] | None) -> str:
    if labels and feature in labels:
        return labels[feature]
    return feature.replace("_", " ")


def _sd_text(
    features: Sequence[str], z: Mapping[str, float], labels: Mapping[str, str] | None
) -> str:
    """The given features in sd, in that order: "income +1.2 sd, spending -0.8 sd"."""
    return ", ".join(f"{_label(f, labels)} {z[f]:+.1f} sd" for f in features)


def _holds(z: float, rule: str) -> bool:
    """Whether a centroid coordinate satisfies a rule (0.5 sd exactly is high/low)."""
    if rule == "high":
        return z >= SD_THRESHOLD
    if rule == "low":
        return z <= -SD_THRESHOLD
    if rule == "not_high":
        return z < SD_THRESHOLD
    if rule == "not_low":
        return z > -SD_THRESHOLD
    if rule == "average":
        return abs(z) < SD_THRESHOLD
    raise ValueError(f"unknown rule {rule!r}; expected one of {sorted(RULES)}")


def _margin(z: float, rule: str) -> float:
    """How far (in sd) a centroid coordinate is inside (>= 0) or outside (< 0) a rule."""
    if rule == "high":
        return z - SD_THRESHOLD
    if rule == "low":
        return -z - SD_THRESHOLD
    # Secondary rules are capped so they can confirm a persona but never dominate it.
    if rule == "not_high":
        return min(SD_THRESHOLD - z, SD_THRESHOLD)
    if rule == "not_low":
        return min(z + SD_THRESHOLD, SD_THRESHOLD)
    return SD_THRESHOLD - abs(z)  # "average"


def _applicable_conditions(archetype: Archetype, names: Sequence[str]) -> Conditions | None:
    """The archetype's conditions in this run ("*" expanded to every feature), or None when
    it needs a feature the run lacks (unless ``drop_missing``) or has no condition left."""
    present = set(names)
    conditions: list[tuple[str, str]] = []
    for feature, rule in archetype.conditions:
        if feature == EVERY_FEATURE:
            conditions += [(name, rule) for name in names]
        elif feature in present:
            conditions.append((feature, rule))
        elif not archetype.drop_missing:
            return None
    return tuple(conditions) or None


def _fits(z: Mapping[str, float], conditions: Conditions) -> bool:
    return all(_holds(z[feature], rule) for feature, rule in conditions)


def _fit_score(z: Mapping[str, float], archetype: Archetype, conditions: Conditions) -> float:
    """Assignment score of a fitting persona: tier plus the summed sd margins."""
    margins = sum(_margin(z[feature], rule) for feature, rule in conditions)
    return (_CORE_FIT if archetype.core else _OTHER_FIT) + margins


def _persona_reason(
    z: Mapping[str, float], conditions: Conditions, labels: Mapping[str, str] | None
) -> str:
    """The archetype's defining features, then any other clearly high/low one, in sd."""
    keys = list(dict.fromkeys(feature for feature, _ in conditions if feature in z))
    others = [f for f, value in z.items() if f not in keys and abs(value) >= SD_THRESHOLD]
    others.sort(key=lambda f: (-abs(z[f]), f))
    # A run on many features: the strongest few others say enough.
    return _sd_text(keys + others[:REASON_EXTRA_FEATURES], z, labels)


def _join(words: Sequence[str]) -> str:
    """Words joined as "a", "a and b", "a, b and c"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _check_z(z: Mapping[str, float]) -> dict[str, float]:
    values = {str(feature): float(value) for feature, value in z.items()}
    if not values:
        raise ValueError("z needs at least one feature")
    if not all(math.isfinite(value) for value in values.values()):
        raise ValueError("z contains NaN or infinite values")
    return values


def _distinctive(z: Mapping[str, float]) -> list[str]:
    """The up to three features that set a centroid apart most, largest |z| first (ties by
    key, so the result does not depend on the order of the run's features)."""
    apart = [f for f, value in z.items() if abs(value) >= SD_THRESHOLD]
    apart.sort(key=lambda f: (-abs(z[f]), f))
    return apart[:MAX_NAME_FEATURES]


def _profile_fit(z: Mapping[str, float]) -> float:
    """How strongly a centroid shows its descriptive profile (larger is better)."""
    features = _distinctive(z)
    if features:
        return sum(abs(z[f]) for f in features)
    return sum(_margin(value, "average") for value in z.values())


# --------------------------------------------------------------------------- describe


def describe(
    z: Mapping[str, float],
    *,
    labels: Mapping[str, str] | None = None,
    words: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[str, str, str]:
    """(archetype signature, name, reason) of a centroid given as {feature: z in sd}.

    The name lists the one to three features that set it apart most (|z| >= 0.5 sd,
    largest first), grouped by direction, highs first: "High grocery and milk, low fresh".
    The signature holds the same facts with feature keys sorted within each direction:
    "profile:high=grocery,milk;low=fresh". A centroid within 0.5 sd on every feature has
    nothing that sets it apart and is described as "mainstream" / "Average Mainstream".
    """
    values = _check_z(z)
    features = _distinctive(values)
    if not features:
        reason = _sd_text(list(values), values, labels)
        return MAINSTREAM, _archetype(MAINSTREAM).name, reason
    highs = [f for f in features if values[f] > 0]
    lows = [f for f in features if values[f] < 0]
    words = words or {}
    # A feature with words of its own says it in them ("recent", "lapsed"), first.
    own = [words[f][0 if values[f] > 0 else 1] for f in features if f in words]
    parts = own + [
        f"{direction} {_join([_label(f, labels) for f in group if f not in words])}"
        for direction, group in (("high", highs), ("low", lows))
        if any(f not in words for f in group)
    ]
    name = ", ".join(parts)
    name = name[:1].upper() + name[1:]
    signature = PROFILE_PREFIX + ";".join(
        f"{direction}={','.join(sorted(group))}"
        for direction, group in (("high", highs), ("low", lows))
        if group
    )
    return signature, name, _sd_text(highs + lows, values, labels)


def _archetype(key: str) -> Archetype:
    return next(a for a in ARCHETYPES if a.key == key)


# --------------------------------------------------------------------------- name_clusters


def _check_inputs(
    centroids_sd: ArrayLike, feature_names: Sequence[str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    names = tuple(str(name) for name in feature_names)
    if not names:
        raise ValueError("a run needs at least one feature")
    if len(set(names)) != len(names):
        raise ValueError(f"feature names must be unique: {names}")
    centroids = np.atleast_2d(np.asarray(centroids_sd, dtype=np.float64))
    if centroids.ndim != 2 or centroids.shape[0] == 0:
        raise ValueError("centroids_sd must be a non-empty K x n_features array")
    if centroids.shape[1] != len(names):
        raise ValueError("centroids_sd has a different number of columns than feature_names")
    if not np.isfinite(centroids).all():
        raise ValueError("centroids_sd contains NaN or infinite values")
    return centroids, names


def _assign_personas(
    zs: list[dict[str, float]], names: tuple[str, ...]
) -> dict[int, tuple[Archetype, Conditions, float]]:
    """Optimal assignment of fitting personas, each to at most one cluster."""
    usable = [(a, c) for a in ARCHETYPES if (c := _applicable_conditions(a, names)) is not None]
    k = len(zs)
    scores = np.full((k, len(usable) + k), _NO_PERSONA)  # k extra "no persona" columns
    for row, z in enumerate(zs):
        for col, (archetype, conditions) in enumerate(usable):
            fits = _fits(z, conditions)
            scores[row, col] = _fit_score(z, archetype, conditions) if fits else _FORBIDDEN
    rows, cols = linear_sum_assignment(scores, maximize=True)
    picks: dict[int, tuple[Archetype, Conditions, float]] = {}
    for row, col in zip(rows, cols, strict=True):
        if col < len(usable) and scores[row, col] > _NO_PERSONA:
            archetype, conditions = usable[col]
            picks[int(row)] = (archetype, conditions, float(scores[row, col]))
    return picks


def _unique(candidates: list[tuple[ClusterName, tuple[float, ...]]]) -> list[ClusterName]:
    """Number duplicate names: the best fitting holder (highest rank) keeps the plain name,
    the others get " 2", " 3", ... (skipping any name already in use)."""
    used = {name.name for name, _ in candidates}
    result: list[ClusterName | None] = [None] * len(candidates)
    for plain in dict.fromkeys(name.name for name, _ in candidates):
        holders = [i for i, (name, _) in enumerate(candidates) if name.name == plain]
        holders.sort(key=lambda i: (tuple(-x for x in candidates[i][1]), i))
        result[holders[0]] = candidates[holders[0]][0]
        number = 1
        for i in holders[1:]:
            number += 1
            while f"{plain} {number}" in used:
                number += 1
            used.add(f"{plain} {number}")
            name = candidates[i][0]
            result[i] = ClusterName(name.archetype, f"{plain} {number}", name.reason, name.matched)
    return [name for name in result if name is not None]


def name_clusters(
    centroids_sd: ArrayLike,
    feature_names: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    words: Mapping[str, tuple[str, str]] | None = None,
) -> list[ClusterName]:
    """Unique names for the centroids (K x n_features, in sd from the mean).

    ``feature_names`` are the run's feature keys (any unique names, at least one);
    ``labels`` maps keys to the short words used in names and reasons (default: the key
    with underscores as spaces); ``words`` maps keys to (high, low) words that describe a
    segment on their own ("lapsed", "recent"). See the module docstring for the rules."""
    centroids, names = _check_inputs(centroids_sd, feature_names)
    zs = [dict(zip(names, map(float, row), strict=True)) for row in centroids]
    picks = _assign_personas(zs, names)
    candidates: list[tuple[ClusterName, tuple[float, ...]]] = []
    for row, z in enumerate(zs):
        if row in picks:
            archetype, conditions, score = picks[row]
            reason = _persona_reason(z, conditions, labels)
            # Assigned personas rank before descriptions that happen to share the name.
            candidates.append((ClusterName(archetype.key, archetype.name, reason), (1.0, score)))
        else:
            key, name, reason = describe(z, labels=labels, words=words)
            # An all-average cluster that lost "Average Mainstream" to a better one still
            # fits it: it becomes "Average Mainstream 2", a matched persona.
            matched = key == MAINSTREAM
            candidates.append((ClusterName(key, name, reason, matched), (0.0, _profile_fit(z))))
    return _unique(candidates)


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Strategy:
    """Default marketing advice for an archetype."""

    description: str
    actions: tuple[str, ...]


STRATEGIES: dict[str, Strategy] = {
    "high_value": Strategy(
        "Your most valuable customers: they earn well and spend freely. Protect the "
        "relationship and keep the experience premium.",
        (
            "Invite them to a VIP tier with priority support and a named contact",
            "Give early access to new collections and limited editions",
            "Recommend premium products and bundles that fit their past purchases",
            "Thank them personally with exclusive events or previews",
        ),
    ),
    "budget": Strategy(
        "Price-conscious customers with modest incomes who spend carefully. Win them with "
        "clear value rather than pressure.",
        (
            "Send targeted discount codes and sale alerts",
            "Promote value ranges, multipacks and own-brand products",
            "Set free-delivery thresholds they can realistically reach",
            "Steer service towards self-service and low-cost channels",
        ),
    ),
    "potential": Strategy(
        "They could afford much more than they spend with you today: the biggest untapped "
        "opportunity in the customer base.",
        (
            "Run engagement campaigns built around products that suit their means",
            "Use personalised recommendations and well-timed upselling",
            "Offer a trial or first-purchase incentive on premium lines",
            "Ask for feedback to learn what holds them back",
        ),
    ),
    "loyal": Strategy(
        "Customers who come back again and again. Keeping them costs far less than replacing them.",
        (
            "Enrol them in a points-based loyalty programme",
            "Celebrate milestones such as the tenth order with a small gift",
            "Offer subscriptions or automatic reordering for repeat items",
            "Watch for falling visit frequency and reach out early",
        ),
    ),
    "young_spenders": Strategy(
        "Younger customers who spend generously for their income; trend-driven and active "
        "on mobile and social channels.",
        (
            "Reach them on social and mobile channels with new trends",
            "Launch limited drops and collaborations with clear entry prices",
            "Reward referrals that bring in their friends",
            "Offer flexible but transparent payment options",
        ),
    ),
    "careful_seniors": Strategy(
        "Older customers who buy cautiously and value trust, quality and good service "
        "over novelty.",
        (
            "Stress quality, guarantees and easy returns",
            "Give detailed product information and an easy phone line",
            "Bundle practical everyday items at a fair price",
            "Prefer email and print over fast-moving social campaigns",
        ),
    ),
    "impulsive": Strategy(
        "Enthusiastic buyers whose spending is high for their income; keep them happy "
        "without pushing them beyond their means.",
        (
            "Feature affordable treats and small add-on items",
            "Suggest cheaper alternatives to their favourite products",
            "Offer a budget-friendly loyalty card with instant rewards",
            "Keep limited-time offers occasional rather than constant",
        ),
    ),
    "occasional": Strategy(
        "They buy rarely, so the relationship is thin and may be fading.",
        (
            "Send a personalised win-back offer",
            "Remind them of items they viewed or bought before",
            "Time campaigns to the season of their past purchases",
            "Ask in a short survey what would bring them back more often",
        ),
    ),
    "affluent": Strategy(
        "Customers with above-average income; their spending is average or not part of this run.",
        (
            "Showcase premium and higher-margin ranges",
            "Offer a personal shopping or concierge service",
            "Invite them to try a premium membership",
        ),
    ),
    "modest": Strategy(
        "Customers with below-average income; value and transparent prices matter most.",
        (
            "Lead with value and clear, honest pricing",
            "Highlight entry-level ranges and clearance items",
            "Offer reachable rewards for repeat purchases",
        ),
    ),
    "mainstream": Strategy(
        "Close to the average customer on every feature: the broad middle of the base.",
        (
            "Use broad campaigns and best-seller recommendations",
            "A/B test offers to uncover smaller preference groups",
            "Cross-sell a second product category",
            "Invite them to the loyalty programme to lift purchase frequency",
        ),
    ),
}


def _signature_text(archetype: str) -> str:
    """A profile signature in words: "high detergents paper and grocery; low fresh"."""
    if not archetype.startswith(PROFILE_PREFIX):
        return ""
    parts = []
    for part in archetype[len(PROFILE_PREFIX) :].split(";"):
        direction, _, features = part.partition("=")
        words = [f.replace("_", " ") for f in features.split(",") if f]
        if direction and words:
            parts.append(f"{direction} {_join(words)}")
    return "; ".join(parts)


def strategy_for(archetype: str, *, reason: str = "") -> Strategy:
    """The persona's strategy, or for a "profile:..." (or unknown) key a generic plan built
    around what sets the segment apart: ``reason`` (or the name) when given, else the
    features in the signature."""
    if archetype in STRATEGIES:
        return STRATEGIES[archetype]
    apart = reason.strip().rstrip(".") or _signature_text(archetype)
    if apart:
        description = (
            f"No ready-made persona fits this segment; what sets it apart from the average "
            f"customer is: {apart}. Build the plan on that."
        )
        first = f"Start from what sets them apart ({apart}) when choosing products and messages"
    else:
        description = "No ready-made persona fits this segment; build the plan on its profile."
        first = "Start from what sets them apart when choosing products and messages"
    return Strategy(
        description,
        (
            first,
            "Review a sample of members before a large campaign to check the profile holds",
            "Test an offer on a small sample first and compare it with a control group",
            "Revisit the plan after the next retrain shows whether the profile is stable",
        ),
    )
