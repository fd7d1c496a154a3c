"""The draw of a campaign's audience into treatment and control. Pure numpy: no Django.

Stratified by segment: inside every stratum exactly round(size x share) customers, those
with the lowest random numbers, form the control group, so every segment has its own
control group in the campaign's proportion (a plain coin per customer could leave a
small segment without one). The random numbers come from the campaign's stored seed, in
the order of the customers' internal ids, so the same audience and seed always give the
same groups: anyone can redo the draw and check it.
"""

from __future__ import annotations

import math

import numpy as np


def control_count(size: int, share: float) -> int:
    """Customers of a stratum of ``size`` that go to control: size x share, halves up."""
    return min(size, math.floor(size * share + 0.5))


def draw_groups(
    customer_pks: np.ndarray, strata: np.ndarray, *, seed: int, control_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """(random number per customer, True where the customer is in control).

    ``customer_pks`` are unique; ``strata`` gives each customer's stratum (any labels).
    The answer is in the order of the arguments, whatever that order is."""
    customer_pks = np.asarray(customer_pks, dtype=np.int64)
    strata = np.asarray(strata)
    order = np.argsort(customer_pks, kind="stable")
    numbers = np.empty(len(customer_pks), dtype=np.float64)
    numbers[order] = np.random.default_rng(seed).random(len(customer_pks))
    control = np.zeros(len(customer_pks), dtype=bool)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        wanted = control_count(len(members), control_share)
        # Lowest numbers first; a tie (practically impossible) goes to the lower id.
        ranked = members[np.lexsort((customer_pks[members], numbers[members]))]
        control[ranked[:wanted]] = True
    return numbers, control
