"""Demo purchase histories with planted behaviour (pure numpy): same seed, same history.

Four kinds of customer, so RFM groups and lifetime values have something to find:
regulars (frequent and recent), lapsed big spenders (bought often, stopped long ago),
one-time buyers, and new customers (first purchase in the last weeks).

Each customer's history follows the process the lifetime-value model assumes (BG/NBD):
from a first purchase, purchases arrive at a personal rate, and after each one the
customer leaves for good with a personal probability. The kinds differ in when they
start, how fast they buy, how likely they are to leave and how much they spend. A history
drawn otherwise (purchases spread uniformly over fixed windows, say) has lapsed customers
stop on a date the model cannot explain, and its drop-out parameters run off instead of
settling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

END = date(2026, 10, 31)  # the last day of the history
SPAN_DAYS = 730
# How much customers of one kind differ: the Beta of the drop-out probability has this
# total "sample size" (a + b), the Gamma of the purchase rate this shape.
DROPOUT_CONCENTRATION = 12.0
RATE_SHAPE = 3.0


@dataclass(frozen=True)
class Behaviour:
    name: str
    share: float
    start: tuple[int, int]  # days before END of the first purchase: (latest, earliest)
    weekly_rate: float  # mean purchases per week while the customer stays
    dropout: float  # mean probability of leaving after each purchase
    spend: tuple[float, float]  # lognormal mean and sigma of one purchase's amount


BEHAVIOURS = (
    Behaviour("regular", 0.35, (300, SPAN_DAYS), 0.25, 0.02, (3.6, 0.5)),
    Behaviour("lapsed big spender", 0.15, (450, SPAN_DAYS), 0.35, 0.2, (5.0, 0.4)),
    Behaviour("one-time buyer", 0.35, (0, SPAN_DAYS), 0.01, 0.9, (3.2, 0.6)),
    Behaviour("new", 0.15, (0, 45), 0.2, 0.05, (3.5, 0.5)),
)


def _days(rng: np.random.Generator, behaviour: Behaviour) -> list[int]:
    """Days before END of one customer's purchases, the first one first."""
    latest, earliest = behaviour.start
    first = int(rng.integers(latest, earliest + 1))
    rate = rng.gamma(RATE_SHAPE, behaviour.weekly_rate / RATE_SHAPE) / 7  # per day
    m, k = behaviour.dropout, DROPOUT_CONCENTRATION
    leave = rng.beta(m * k, (1 - m) * k)
    days, elapsed = [first], 0.0
    while rate > 0 and rng.random() >= leave:
        elapsed += rng.exponential(1 / rate)
        if elapsed >= first:
            break
        days.append(first - int(elapsed))
    return days


def purchase_lines(customer_ids: list[str], seed: int) -> list[str]:
    """CSV lines (customer_id,date,amount) of every customer's purchases, oldest first."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(BEHAVIOURS), size=len(customer_ids), p=[b.share for b in BEHAVIOURS])
    lines = []
    for customer_id, kind in zip(customer_ids, kinds, strict=True):
        behaviour = BEHAVIOURS[kind]
        days = _days(rng, behaviour)
        amounts = np.exp(rng.normal(*behaviour.spend, size=len(days)))
        for day, amount in zip(days, amounts, strict=True):
            when = END - timedelta(days=int(day))
            lines.append(f"{customer_id},{when.isoformat()},{amount:.2f}")
    return lines
