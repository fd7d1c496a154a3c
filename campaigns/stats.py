"""Lift and ROI of a campaign: differences between treatment and control with honest
95 % intervals. Pure Python (scipy only for the t quantile): no Django.

- Conversion: the difference of two proportions with Newcomb's hybrid score interval
  (method 10 of Newcomb 1998), built from each group's Wilson score interval. Unlike the
  textbook Wald interval it stays inside [-1, 1] and keeps its coverage when a group has
  zero conversions.
- Revenue per customer: Welch's t interval for the difference of two means (unequal
  variances, Welch-Satterthwaite degrees of freedom).
- The group sizes needed to detect the observed difference at 80 % power with a two-sided
  5 % test, at the campaign's own treatment/control split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
POWER = 0.80
METHOD_CONVERSION = (
    "Newcomb's hybrid score interval (from Wilson intervals) for the difference of proportions"
)
METHOD_REVENUE = "Welch's t interval for the difference of means (unequal variances)"


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def _t_quantile(p: float, df: float) -> float:
    """Student's t quantile. scipy is imported here, not with the module: importing
    scipy.stats would add over a second to every web process's first request."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion (n = 0: the whole of [0, 1])."""
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Difference:
    """Treatment minus control, with its interval; ``needed`` group sizes (treatment,
    control) to detect this difference at 80 % power, None when it is zero."""

    estimate: float
    low: float
    high: float
    needed: tuple[int, int] | None = None

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return bool(self.low > 0 or self.high < 0)


def proportion_difference(
    x_treatment: int,
    n_treatment: int,
    x_control: int,
    n_control: int,
    confidence: float = CONFIDENCE,
) -> Difference | None:
    """Newcomb's hybrid score interval for p_treatment - p_control (None: an empty group)."""
    if n_treatment == 0 or n_control == 0:
        return None
    p1, p0 = x_treatment / n_treatment, x_control / n_control
    l1, u1 = wilson_interval(x_treatment, n_treatment, confidence)
    l0, u0 = wilson_interval(x_control, n_control, confidence)
    estimate = p1 - p0
    low = estimate - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = estimate + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    ratio = n_treatment / n_control
    return Difference(estimate, low, high, proportions_needed(p0, p1, ratio, confidence))


def proportions_needed(
    p_control: float,
    p_treatment: float,
    ratio: float,
    confidence: float = CONFIDENCE,
    power: float = POWER,
) -> tuple[int, int] | None:
    """(treatment, control) sizes for a two-sided test of two proportions to detect
    p_treatment - p_control with ``power``, treatment = ratio x control (Fleiss'
    formula for unequal groups, without continuity correction)."""
    delta = p_treatment - p_control
    if delta == 0:
        return None
    za, zb = _z(confidence), NormalDist().inv_cdf(power)
    pooled = (ratio * p_treatment + p_control) / (ratio + 1)
    spread = za * math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)) + zb * math.sqrt(
        p_control * (1 - p_control) + p_treatment * (1 - p_treatment) / ratio
    )
    control = math.ceil((spread / delta) ** 2)
    return math.ceil(control * ratio), control


@dataclass(frozen=True)
class Sample:
    """A group's values summarised: size, sum and sum of squares (what a database adds up)."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """The unbiased sample variance (None below two values)."""
        if self.n < 2:
            return None
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


def mean_difference(
    treatment: Sample, control: Sample, confidence: float = CONFIDENCE
) -> Difference | None:
    """Welch's interval for mean(treatment) - mean(control) (None below two per group)."""
    if treatment.variance is None or control.variance is None:
        return None
    estimate = treatment.mean - control.mean
    a, b = treatment.variance / treatment.n, control.variance / control.n
    se = math.sqrt(a + b)
    if se == 0:
        return Difference(estimate, estimate, estimate, None)
    df = (a + b) ** 2 / (a * a / (treatment.n - 1) + b * b / (control.n - 1))
    half = _t_quantile(1 - (1 - confidence) / 2, df) * se
    ratio = treatment.n / control.n
    needed = means_needed(estimate, treatment.variance, control.variance, ratio, confidence)
    return Difference(estimate, estimate - half, estimate + half, needed)


def means_needed(
    delta: float,
    var_treatment: float,
    var_control: float,
    ratio: float,
    confidence: float = CONFIDENCE,
    power: float = POWER,
) -> tuple[int, int] | None:
    """(treatment, control) sizes to detect a difference of means ``delta`` (normal
    approximation), treatment = ratio x control."""
    if delta == 0:
        return None
    za, zb = _z(confidence), NormalDist().inv_cdf(power)
    control = math.ceil((za + zb) ** 2 * (var_control + var_treatment / ratio) / delta**2)
    return math.ceil(control * ratio), control


@dataclass(frozen=True)
class GroupCounts:
    """One group (treatment or control) of a campaign or of one of its segments."""

    customers: int
    conversions: int
    revenue: float
    revenue_squares: float

    @property
    def rate(self) -> float | None:
        return self.conversions / self.customers if self.customers else None

    @property
    def revenue_per_customer(self) -> float | None:
        return self.revenue / self.customers if self.customers else None

    @property
    def sample(self) -> Sample:
        return Sample(self.customers, self.revenue, self.revenue_squares)

    def __add__(self, other: GroupCounts) -> GroupCounts:
        return GroupCounts(
            self.customers + other.customers,
            self.conversions + other.conversions,
            self.revenue + other.revenue,
            self.revenue_squares + other.revenue_squares,
        )


EMPTY = GroupCounts(0, 0, 0.0, 0.0)


@dataclass(frozen=True)
class Lift:
    """What a campaign (or one of its segments) earned against its control group."""

    treatment: GroupCounts
    control: GroupCounts
    conversion: Difference | None  # in proportions (0.041 = 4.1 points)
    revenue: Difference | None  # revenue per customer
    cost: float
    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None

    @property
    def roi(self) -> float | None:
        """(incremental revenue - cost) / cost; None without a cost or a control group."""
        if self.incremental_revenue is None or not self.cost:
            return None
        return (self.incremental_revenue - self.cost) / self.cost

    @property
    def roi_interval(self) -> tuple[float, float] | None:
        """The ROI at the ends of the incremental revenue's 95 % interval."""
        if self.incremental_revenue_low is None or not self.cost:
            return None
        return (
            (self.incremental_revenue_low - self.cost) / self.cost,
            (self.incremental_revenue_high - self.cost) / self.cost,
        )

    @property
    def incremental_conversions(self) -> float | None:
        if self.conversion is None:
            return None
        return self.conversion.estimate * self.treatment.customers


def lift(treatment: GroupCounts, control: GroupCounts, cost_per_contact: float) -> Lift:
    """Lift of ``treatment`` over ``control``: conversion and revenue differences with
    their intervals; incremental revenue = the difference per customer x treated customers;
    cost = treated customers x cost per contact (the control group is not contacted)."""
    conversion = proportion_difference(
        treatment.conversions, treatment.customers, control.conversions, control.customers
    )
    revenue = mean_difference(treatment.sample, control.sample)
    n = treatment.customers
    return Lift(
        treatment=treatment,
        control=control,
        conversion=conversion,
        revenue=revenue,
        cost=n * cost_per_contact,
        incremental_revenue=revenue.estimate * n if revenue else None,
        incremental_revenue_low=revenue.low * n if revenue else None,
        incremental_revenue_high=revenue.high * n if revenue else None,
    )
