"""Files shaped like the ones shops really export, made by the tests themselves.

Each generator plants a known structure, so a test can check that the import keeps the
columns and that a default retrain finds segments whose names agree with their numbers.
No downloaded data set: the shapes (column names, separators, units, blanks) follow
public files people commonly start from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WHOLESALE_SPEND = ("Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen")


def wholesale_file(path: Path, rows: int = 440, seed: int = 1) -> Path:
    """Business customers: channel and region codes, annual spend in six categories, no ID.

    Two planted groups: hotels and restaurants (high fresh and frozen) and retailers (high
    grocery, milk and detergents)."""
    rng = np.random.default_rng(seed)
    retail = rng.random(rows) < 0.35
    # log-scale means per category: (horeca, retail)
    means = {
        "Fresh": (9.3, 8.0),
        "Milk": (7.4, 9.2),
        "Grocery": (7.6, 9.6),
        "Frozen": (7.8, 6.8),
        "Detergents_Paper": (5.5, 8.7),
        "Delicassen": (6.6, 7.0),
    }
    lines = ["Channel,Region," + ",".join(WHOLESALE_SPEND)]
    for i in range(rows):
        group = int(retail[i])
        spend = [int(np.exp(rng.normal(means[c][group], 0.55))) for c in WHOLESALE_SPEND]
        region = rng.choice([1, 2, 3], p=[0.18, 0.11, 0.71])
        lines.append(f"{group + 1},{region}," + ",".join(str(v) for v in spend))
    path.write_text("\n".join(lines) + "\n")
    return path


MARKETING_HEADER = (
    "ID",
    "Year_Birth",
    "Education",
    "Marital_Status",
    "Income",
    "Kidhome",
    "MntWines",
    "MntFruits",
    "MntMeatProducts",
    "MntFishProducts",
    "MntSweetProducts",
    "MntGoldProds",
    "NumWebPurchases",
    "NumCatalogPurchases",
    "NumStorePurchases",
)


def marketing_file(path: Path, rows: int = 1500, seed: int = 2) -> Path:
    """A tab-separated marketing export: birth years, income in dollars with blanks, spend
    per product line, purchases per channel, and one customer with an absurd income."""
    rng = np.random.default_rng(seed)
    affluent = rng.random(rows) < 0.4
    lines = ["\t".join(MARKETING_HEADER)]
    for i in range(rows):
        rich = bool(affluent[i])
        income = rng.normal(75_000 if rich else 32_000, 9_000)
        if i == 7:
            income = 666_666  # the absurd one
        wines = rng.gamma(2.0, 300 if rich else 25)
        meat = rng.gamma(2.0, 200 if rich else 15)
        small = [rng.gamma(1.5, 30 if rich else 5) for _ in range(4)]
        web = rng.poisson(6 if rich else 2)
        catalog = rng.poisson(5 if rich else 0.5)
        store = rng.poisson(8 if rich else 3)
        cells = [
            str(5000 + i),
            str(int(rng.integers(1945, 1995))),
            rng.choice(["Graduation", "PhD", "Master", "Basic", "2n Cycle"]),
            rng.choice(["Married", "Together", "Single", "Divorced", "Widow"]),
            "" if i % 97 == 3 else str(int(max(income, 2000))),
            str(int(rng.integers(0, 3))),
            *(str(int(v)) for v in (wines, small[0], meat, small[1], small[2], small[3])),
            str(web),
            str(catalog),
            str(store),
        ]
        lines.append("\t".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


MARKETING_DERIVATIONS = (
    "age=2014-[Year_Birth]",
    "annual_income=[Income]/1000",
    "total_spend=[MntWines]+[MntFruits]+[MntMeatProducts]+[MntFishProducts]"
    "+[MntSweetProducts]+[MntGoldProds]",
    "total_purchases=[NumWebPurchases]+[NumCatalogPurchases]+[NumStorePurchases]",
)


def mall_file(path: Path, rows: int = 200, seed: int = 3) -> Path:
    """The classic mall file: ID, gender, age, income (k$), spending score; no purchases."""
    rng = np.random.default_rng(seed)
    centres = [(25, 25, 80), (45, 26, 20), (40, 55, 50), (32, 87, 82), (42, 88, 17)]
    lines = ["CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"]
    for i in range(rows):
        age, income, score = centres[i % len(centres)]
        gender = "Female" if rng.random() < 0.56 else "Male"
        lines.append(
            f"{i + 1},{gender},{int(np.clip(rng.normal(age, 6), 18, 70))},"
            f"{int(np.clip(rng.normal(income, 7), 15, 137))},"
            f"{int(np.clip(rng.normal(score, 7), 1, 99))}"
        )
    path.write_text("\r\n".join(lines) + "\r\n")
    return path
