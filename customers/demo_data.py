"""Demo customers with a planted segment structure (pure numpy, no database).

Uniformly random columns have no clusters at all, so the generator draws
each customer from one of the product's four archetypes, plus a little
uniform noise, and clips to realistic ranges. Same seed, same customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Archetype:
    name: str
    share: float
    mean: tuple[float, float, float, float]  # age, income (k), spending score, purchases/year
    spread: tuple[float, float, float, float]
    female_share: float


ARCHETYPES = (
    Archetype("High-Value Customers", 0.18, (41, 118, 82, 30), (7, 11, 6, 4), 0.55),
    Archetype("Budget Shoppers", 0.29, (27, 28, 22, 8), (5, 8, 7, 3), 0.50),
    Archetype("Potential Targets", 0.22, (51, 102, 24, 6), (7, 11, 7, 2.5), 0.45),
    Archetype("Loyal Customers", 0.27, (35, 60, 62, 42), (6, 8, 7, 4), 0.58),
)
NOISE_SHARE = 0.04
DEMO_PREFIX = "DEMO-"  # demo customers' IDs: DEMO-0000001 onwards
LOWER = np.array([18, 15, 1, 1])
UPPER = np.array([75, 150, 100, 60])


def generate(count: int, seed: int) -> dict[str, np.ndarray]:
    """Columns of ``count`` demo customers (age, income, score, frequency, sex, archetype)."""
    rng = np.random.default_rng(seed)
    shares = np.array([a.share for a in ARCHETYPES] + [NOISE_SHARE])
    group = rng.choice(len(shares), size=count, p=shares / shares.sum())
    values = rng.uniform(LOWER, UPPER, size=(count, 4))  # noise rows keep these
    female_share = np.full(count, 0.5)
    for index, archetype in enumerate(ARCHETYPES):
        members = group == index
        values[members] = rng.normal(archetype.mean, archetype.spread, size=(members.sum(), 4))
        female_share[members] = archetype.female_share
    values = np.clip(np.rint(values), LOWER, UPPER).astype(int)
    draw = rng.random(count)
    sex = np.where(draw < female_share, "female", "male")
    sex[draw > 0.98] = "other"
    return {
        "age": values[:, 0],
        "annual_income": values[:, 1].astype(float),
        "spending_score": values[:, 2],
        "purchase_frequency": values[:, 3],
        "sex": sex,
        "archetype": group,
    }


# Extra columns of the kind real files bring, for `generate_customers --attributes N` (the
# benchmark uses twenty): every fourth one a category, the others skewed amounts.
REGIONS = ("north", "south", "east", "west", "centre")


def extra_attribute_keys(count: int) -> list[tuple[str, str]]:
    """(key, kind) of ``count`` extra attributes."""
    return [
        (f"region_{i:02d}", "categorical") if i % 4 == 3 else (f"spend_{i:02d}", "numeric")
        for i in range(count)
    ]


def extra_attributes(count: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Columns of extra attribute values: lognormal amounts and region codes."""
    rng = np.random.default_rng(seed + 1)
    columns: dict[str, np.ndarray] = {}
    for key, kind in extra_attribute_keys(count):
        if kind == "categorical":
            columns[key] = rng.choice(np.array(REGIONS), size=rows)
        else:
            columns[key] = np.round(np.exp(rng.normal(4.0, 1.0, size=rows)), 2)
    return columns
