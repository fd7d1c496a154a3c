"""Tests of segment naming (clustering.naming): plain arrays in sd, no database."""

from __future__ import annotations

import numpy as np
import pytest

from clustering import naming

CONSUMER = ("age", "annual_income", "spending_score", "purchase_frequency")
CONSUMER_LABELS = {
    "age": "age",
    "annual_income": "income",
    "spending_score": "spending",
    "purchase_frequency": "frequency",
}
BUSINESS = ("fresh", "milk", "grocery", "frozen", "detergents_paper", "delicassen")
PERSONA_KEYS = {a.key for a in naming.ARCHETYPES} - {"mainstream"}

# Centroids (in sd) of the four planted blobs of the engine tests: high value, budget,
# potential, loyal on (age, annual_income, spending_score, purchase_frequency).
PLANTED = np.array(
    [
        (0.18, 1.10, 1.29, 0.63),
        (-1.03, -1.33, -0.97, -0.88),
        (1.18, 0.71, -0.86, -1.00),
        (-0.33, -0.48, 0.54, 1.26),
    ]
)


def random_centroids(k: int, n_features: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=scale, size=(k, n_features))


def sd_values(reason: str) -> dict[str, float]:
    """{label: value} from a reason such as "income +1.2 sd, spending -0.8 sd"."""
    items = (item.removesuffix(" sd").rsplit(" ", 1) for item in reason.split(", "))
    return {label: float(value) for label, value in items}


def signature_parts(archetype: str) -> dict[str, list[str]]:
    """{"high": [...], "low": [...]} from "profile:high=a,b;low=c"."""
    body = archetype.removeprefix(naming.PROFILE_PREFIX)
    parts = dict(part.split("=") for part in body.split(";"))
    return {direction: features.split(",") for direction, features in parts.items()}


# --------------------------------------------------------------------------- personas


def test_the_four_planted_personas_get_their_playbook_names():
    names = naming.name_clusters(PLANTED, CONSUMER, labels=CONSUMER_LABELS)
    assert [n.name for n in names] == [
        "High-Value Customers",
        "Budget Shoppers",
        "Potential Targets",
        "Loyal Customers",
    ]
    assert [n.archetype for n in names] == ["high_value", "budget", "potential", "loyal"]
    assert all(n.matched for n in names)


def test_a_persona_reason_lists_its_defining_features_first_then_other_clear_ones():
    names = naming.name_clusters(PLANTED, CONSUMER, labels=CONSUMER_LABELS)
    assert names[0].reason == "income +1.1 sd, spending +1.3 sd, frequency +0.6 sd"
    # Budget: income and spending define it; age and frequency are clearly low too.
    assert names[1].reason == "income -1.3 sd, spending -1.0 sd, age -1.0 sd, frequency -0.9 sd"


@pytest.mark.parametrize(
    "others",
    [
        [],
        [[0.0, -1.2, 0.0, 0.0]],
        [[0.0, 1.5, 1.5, 0.0], [0.0, -1.0, -1.0, 0.0], [0.0, 0.2, 0.0, 1.1]],
    ],
)
def test_income_at_plus_0_1_sd_is_never_affluent(others):
    centroids = np.array([[0.0, 0.1, 0.9, 0.0], *others])
    names = naming.name_clusters(centroids, CONSUMER, labels=CONSUMER_LABELS)
    assert names[0].archetype != "affluent"
    assert "Affluent" not in names[0].name
    assert names[0].name == "High spending"
    assert not names[0].matched


def test_affluent_still_applies_at_0_5_sd_exactly():
    names = naming.name_clusters([[0.0, 0.5]], ("age", "annual_income"))
    assert names[0].name == "Affluent Customers"


def test_spending_0_8_sd_above_average_is_not_average_mainstream():
    names = naming.name_clusters([[0.1, -0.2, 0.8, 0.3]], CONSUMER, labels=CONSUMER_LABELS)
    assert names[0].name != "Average Mainstream"
    assert names[0].archetype == "profile:high=spending_score"
    assert names[0].name == "High spending"
    assert names[0].reason == "spending +0.8 sd"


def test_a_cluster_within_0_5_sd_on_everything_is_average_mainstream():
    centroids = [[0.49, -0.3, 0.2, -0.49], [1.5, 1.5, 1.5, 1.5]]
    names = naming.name_clusters(centroids, CONSUMER, labels=CONSUMER_LABELS)
    assert (names[0].archetype, names[0].name) == ("mainstream", "Average Mainstream")
    assert names[0].matched
    assert names[0].reason == "age +0.5 sd, income -0.3 sd, spending +0.2 sd, frequency -0.5 sd"


def test_average_on_business_features_is_average_mainstream_too():
    names = naming.name_clusters([[0.1] * 6], BUSINESS)
    assert names[0].name == "Average Mainstream"


def test_a_core_persona_wins_over_a_minor_one_that_also_fits():
    # Fits high_value, affluent and loyal: the core persona that fits best is chosen.
    names = naming.name_clusters([[0.0, 1.0, 1.0, 0.6]], CONSUMER)
    assert names[0].archetype == "high_value"


def test_a_persona_needing_a_feature_the_run_lacks_does_not_apply():
    features = ("age", "annual_income")
    names = naming.name_clusters([[0.0, 1.5], [0.1, -1.4], [0.0, 0.1]], features)
    assert [n.archetype for n in names] == ["affluent", "modest", "mainstream"]
    # Without spending, low income and high age is never "Careful Seniors" or "Budget".
    names = naming.name_clusters([[1.2, -1.0]], features)
    assert names[0].archetype == "modest"


def test_young_high_spenders_need_income_not_high():
    young, rich_young = [-1.0, 0.2, 1.0, 0.0], [-1.0, 0.6, 1.0, 0.0]
    names = naming.name_clusters([young, rich_young], CONSUMER)
    assert names[0].name == "Young High Spenders"
    assert names[1].archetype == "high_value"


def test_business_features_get_descriptive_names_never_consumer_personas():
    centroids = [[-0.7, 0.3, 1.4, 0.0, 1.2, 0.1], [0.0, 0.0, 0.0, 2.0, -0.9, 0.4]]
    names = naming.name_clusters(centroids, BUSINESS)
    assert names[0].name == "High grocery and detergents paper, low fresh"
    assert names[0].archetype == "profile:high=detergents_paper,grocery;low=fresh"
    assert names[0].reason == "grocery +1.4 sd, detergents paper +1.2 sd, fresh -0.7 sd"
    assert names[1].name == "High frozen, low detergents paper"
    assert not any(n.matched for n in names)


@pytest.mark.parametrize("seed", range(5))
def test_random_business_segments_never_get_a_consumer_persona(seed):
    names = naming.name_clusters(random_centroids(10, len(BUSINESS), seed), BUSINESS)
    assert not {n.archetype for n in names} & PERSONA_KEYS
    assert not any(a.name in n.name for n in names for a in naming.ARCHETYPES if a.core)


# --------------------------------------------------------------------------- descriptions


def test_a_description_names_at_most_three_features_largest_first_highs_first():
    z = {"fresh": -2.0, "milk": 0.6, "grocery": 1.5, "frozen": 0.9, "delicassen": -0.2}
    signature, name, reason = naming.describe(z)
    assert name == "High grocery and frozen, low fresh"
    assert signature == "profile:high=frozen,grocery;low=fresh"
    assert reason == "grocery +1.5 sd, frozen +0.9 sd, fresh -2.0 sd"


def test_describe_with_labels_matches_the_product_owner_example():
    z = {"fresh": -0.7, "grocery": 1.4, "detergents_paper": 1.2, "milk": 0.3}
    labels = {"detergents_paper": "detergents"}
    assert naming.describe(z, labels=labels) == (
        "profile:high=detergents_paper,grocery;low=fresh",
        "High grocery and detergents, low fresh",
        "grocery +1.4 sd, detergents +1.2 sd, fresh -0.7 sd",
    )


def test_a_description_capitalises_only_the_first_letter():
    _, name, _ = naming.describe({"annual_income": -1.0, "age": 0.0}, labels=CONSUMER_LABELS)
    assert name == "Low income"
    _, name, _ = naming.describe({"mnt_wines": 0.8, "total_spend": 0.7, "recency": -0.1})
    assert name == "High mnt wines and total spend"


@pytest.mark.parametrize("seed", range(20))
def test_every_name_agrees_with_its_numbers(seed):
    rng = np.random.default_rng(seed)
    features = CONSUMER if seed % 2 else BUSINESS
    k, scale = int(rng.integers(2, 11)), float(rng.uniform(0.3, 1.5))
    centroids = random_centroids(k, len(features), seed, scale=scale)
    for row, cluster in zip(centroids, naming.name_clusters(centroids, features), strict=True):
        z = dict(zip(features, row, strict=True))
        apart = sorted((f for f in z if abs(z[f]) >= 0.5), key=lambda f: -abs(z[f]))
        shown = sd_values(cluster.reason)
        if cluster.archetype.startswith(naming.PROFILE_PREFIX):
            parts = signature_parts(cluster.archetype)
            highs, lows = parts.get("high", []), parts.get("low", [])
            assert all(z[f] >= 0.5 for f in highs) and all(z[f] <= -0.5 for f in lows)
            assert set(highs + lows) == set(apart[:3])
            assert cluster.name.startswith("High" if highs else "Low")
            assert len(shown) == len(highs + lows)
        elif cluster.archetype == "mainstream":
            assert not apart
        else:
            archetype = next(a for a in naming.ARCHETYPES if a.key == cluster.archetype)
            assert all(naming._holds(z[f], rule) for f, rule in archetype.conditions)
            assert {f.replace("_", " ") for f in apart} <= set(shown)
        # Every number in the reason is the cluster's own.
        for label, value in shown.items():
            assert value == pytest.approx(z[label.replace(" ", "_")], abs=0.051)


def test_the_signature_does_not_depend_on_the_order_of_the_features():
    centroids = random_centroids(8, len(BUSINESS), seed=3, scale=1.2)
    order = [4, 2, 5, 0, 3, 1]
    names = naming.name_clusters(centroids, BUSINESS)
    shuffled = naming.name_clusters(centroids[:, order], [BUSINESS[i] for i in order])
    assert [(n.archetype, n.name) for n in names] == [(n.archetype, n.name) for n in shuffled]
    assert any(n.archetype.startswith(naming.PROFILE_PREFIX) for n in names)


def test_labels_passed_in_are_used_in_names_and_reasons():
    labels = {"detergents_paper": "Detergents & paper", "grocery": "grocery €"}
    names = naming.name_clusters([[0.0, 0.0, 1.4, 0.0, 1.2, 0.0]], BUSINESS, labels=labels)
    assert names[0].name == "High grocery € and Detergents & paper"
    assert names[0].reason == "grocery € +1.4 sd, Detergents & paper +1.2 sd"
    # The signature uses the keys, never the labels.
    assert names[0].archetype == "profile:high=detergents_paper,grocery"


def test_labels_are_used_in_persona_reasons():
    names = naming.name_clusters(PLANTED, CONSUMER, labels={"annual_income": "yearly pay"})
    assert names[0].reason.startswith("yearly pay +1.1 sd, spending score +1.3 sd")


# --------------------------------------------------------------------------- uniqueness


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("features", [CONSUMER, BUSINESS, ("annual_income", "spending_score")])
def test_names_are_unique_at_k10_on_random_centroids(seed, features):
    centroids = random_centroids(10, len(features), seed, scale=0.8)
    names = naming.name_clusters(centroids, features)
    assert len({n.name for n in names}) == 10


def test_names_stay_unique_with_more_clusters_than_profiles():
    names = naming.name_clusters(random_centroids(40, 2, seed=1), ("age", "annual_income"))
    assert len({n.name for n in names}) == 40


def test_two_clusters_with_the_same_profile_get_a_number_the_stronger_keeps_the_name():
    weaker, stronger = [0.0, 0.0, 0.9, 0.0, 0.7, 0.0], [0.0, 0.0, 1.8, 0.0, 1.1, 0.0]
    names = naming.name_clusters([weaker, stronger], BUSINESS)
    assert names[1].name == "High grocery and detergents paper"
    assert names[0].name == "High grocery and detergents paper 2"
    assert names[0].archetype == names[1].archetype


def test_all_average_clusters_are_numbered_mainstream():
    names = naming.name_clusters(np.zeros((3, 4)), CONSUMER)
    assert [n.name for n in names] == [
        "Average Mainstream",
        "Average Mainstream 2",
        "Average Mainstream 3",
    ]
    assert {n.archetype for n in names} == {"mainstream"}


def test_a_cluster_that_loses_its_only_persona_is_described_not_duplicated():
    weaker, stronger = [0.0, 0.0, 0.0, 0.8], [0.0, 0.0, 0.0, 1.6]
    names = naming.name_clusters([weaker, stronger], CONSUMER, labels=CONSUMER_LABELS)
    assert names[1].name == "Loyal Customers"
    assert (names[0].name, names[0].matched) == ("High frequency", False)
    assert names[0].archetype == "profile:high=purchase_frequency"


def test_a_cluster_that_loses_a_persona_takes_its_next_fitting_one():
    # Both fit high_value; the second also fits affluent and takes it so both keep a persona.
    names = naming.name_clusters([[0.0, 1.0, 1.0, 0.0], [0.0, 2.0, 0.6, 0.0]], CONSUMER)
    assert {n.archetype for n in names} == {"high_value", "affluent"}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unique"):
        naming.name_clusters([[0.0, 0.0]], ("age", "age"))
    with pytest.raises(ValueError, match="columns"):
        naming.name_clusters([[0.0, 0.0]], ("age",))
    with pytest.raises(ValueError, match="at least one"):
        naming.name_clusters(np.zeros((1, 0)), ())
    with pytest.raises(ValueError, match="NaN"):
        naming.name_clusters([[np.nan]], ("age",))


# --------------------------------------------------------------------------- strategies


def test_every_archetype_has_a_playbook_strategy():
    assert set(naming.STRATEGIES) == {a.key for a in naming.ARCHETYPES}
    for strategy in naming.STRATEGIES.values():
        assert strategy.description
        assert 3 <= len(strategy.actions) <= 5


@pytest.mark.parametrize("key", sorted(naming.STRATEGIES))
def test_strategy_for_a_persona_is_its_playbook_strategy(key):
    assert naming.strategy_for(key, reason="ignored") is naming.STRATEGIES[key]


def test_strategy_for_a_profile_starts_from_what_sets_the_segment_apart():
    names = naming.name_clusters([[-0.7, 0.3, 1.4, 0.0, 1.2, 0.1]], BUSINESS)
    strategy = naming.strategy_for(names[0].archetype, reason=names[0].reason)
    text = " ".join((strategy.description, *strategy.actions))
    assert "grocery +1.4 sd" in text and "fresh -0.7 sd" in text
    assert 3 <= len(strategy.actions) <= 5
    assert any("sample" in action for action in strategy.actions)


def test_strategy_for_a_profile_without_reason_uses_the_signature():
    strategy = naming.strategy_for("profile:high=detergents_paper,grocery;low=fresh")
    assert "detergents paper" in strategy.description
    assert "fresh" in strategy.description
    assert naming.strategy_for("something_unknown").actions


RFM_WORDS = {
    "rfm_recency": ("lapsed", "recent"),
    "rfm_frequency": ("frequent", "rare buyers"),
    "rfm_monetary": ("big spenders", "small spenders"),
}


def test_features_with_words_of_their_own_name_a_segment_in_them():
    features = ("rfm_recency", "rfm_frequency", "rfm_monetary")
    centroids = np.array([[-0.7, 1.0, 0.9], [1.4, -0.2, 0.8]])

    names = naming.name_clusters(centroids, features, words=RFM_WORDS)

    assert names[0].name == "Frequent, big spenders, recent"
    assert names[1].name == "Lapsed, big spenders"
    # The signature is the same facts as without words: identity across retrains holds.
    plain = naming.name_clusters(centroids, features)
    assert [n.archetype for n in names] == [n.archetype for n in plain]
