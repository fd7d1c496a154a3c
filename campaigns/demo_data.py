"""Demo outcomes for a campaign with planted effects, to try the measurement end to end.
Pure numpy: no Django."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def outcome_rows(
    members: Iterable[tuple[str, str, str]],
    rates: dict[str, tuple[float, float]],
    *,
    default: tuple[float, float],
    order_value: float,
    seed: int,
) -> Iterator[tuple[str, str, str]]:
    """(customer ID, "yes"/"no", revenue) for each (customer ID, stratum label, group):
    a customer converts with the (treatment, control) rate of its stratum, and a
    conversion brings a revenue drawn around ``order_value`` (gamma, shape 4)."""
    rng = np.random.default_rng(seed)
    for customer_id, label, group in members:
        treatment, control = rates.get(label, default)
        rate = treatment if group == "treatment" else control
        if rng.random() < rate:
            yield customer_id, "yes", f"{rng.gamma(4.0, order_value / 4.0):.2f}"
        else:
            yield customer_id, "no", "0"
