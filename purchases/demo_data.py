"""Demo purchase histories with planted behaviour (pure numpy): same seed, same history.

Four kinds of customer, so RFM groups and lifetime values have something to find:
regulars (frequent and recent), lapsed big spenders (spent much, long ago), one-time
buyers, and new customers (first purchase in the last weeks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

END = date(2026, 10, 31)  # the last day of the history
SPAN_DAYS = 730


@dataclass(frozen=True)
class Behaviour:
    name: str
    share: float
    purchases: tuple[int, int]  # how many, at least and at most
    window: tuple[int, int]  # days before END the purchases fall in: (latest, earliest)
    spend: tuple[float, float]  # lognormal mean and sigma of one purchase's amount


BEHAVIOURS = (
    Behaviour("regular", 0.35, (6, 30), (0, SPAN_DAYS), (3.6, 0.5)),
    Behaviour("lapsed big spender", 0.15, (4, 15), (300, SPAN_DAYS), (5.0, 0.4)),
    Behaviour("one-time buyer", 0.35, (1, 1), (0, SPAN_DAYS), (3.2, 0.6)),
    Behaviour("new", 0.15, (1, 3), (0, 45), (3.5, 0.5)),
)


def purchase_lines(customer_ids: list[str], seed: int) -> list[str]:
    """CSV lines (customer_id,date,amount) of every customer's purchases, oldest first."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(BEHAVIOURS), size=len(customer_ids), p=[b.share for b in BEHAVIOURS])
    lines = []
    for customer_id, kind in zip(customer_ids, kinds, strict=True):
        behaviour = BEHAVIOURS[kind]
        count = int(rng.integers(behaviour.purchases[0], behaviour.purchases[1] + 1))
        latest, earliest = behaviour.window
        days = np.sort(rng.integers(latest, earliest + 1, size=count))[::-1]
        amounts = np.exp(rng.normal(*behaviour.spend, size=count))
        for day, amount in zip(days, amounts, strict=True):
            when = END - timedelta(days=int(day))
            lines.append(f"{customer_id},{when.isoformat()},{amount:.2f}")
    return lines
