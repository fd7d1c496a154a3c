"""Customer lifetime value: BG/NBD repeat purchases, Gamma-Gamma spend, and their product.

Pure numpy/scipy/pandas; nothing here imports Django. The models and their formulas:

* **BG/NBD** (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way: An
  Alternative to the Pareto/NBD Model", Marketing Science 24(2)). While active, a customer
  buys at a Poisson rate lambda ~ Gamma(r, alpha); after each *repeat* purchase the customer
  drops out for good with probability p ~ Beta(a, b). Fitted by maximum likelihood on each
  customer's frequency ``x`` (repeat purchases), recency ``t_x`` (time of the last purchase,
  measured from the first) and age ``T`` (time from the first purchase to the end of the
  period): likelihood eq. 6, P(alive) (Fader, Hardie & Lee's note "Computing P(alive) Using
  the BG/NBD Model"), the conditional expectation eq. 10 and the unconditional expectation
  eq. 9 of the paper.
* **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves for
  Customer Base Analysis", JMR 42(4); Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary
  Value"). A customer's purchases have values ~ Gamma(p, nu) with nu ~ Gamma(q, v) across
  customers; fitted on repeat customers' (x, mean spend of the repeat purchases) and used
  for the conditional expected mean spend.
* **CLV** of the next N days = expected repeat purchases in those days x expected mean spend,
  optionally discounted (see ``customer_lifetime_value``).

Conventions (those of the papers and of the ``lifetimes`` library):

* Time is in a unit chosen by the caller, ``"weeks"`` (the CDNOW literature) or ``"days"``;
  only alpha depends on it (alpha in days = 7 x alpha in weeks), r, a, b, p, q, v do not.
* A purchase is a purchase *day*: several purchases by a customer on one day are one, with
  the day's total as its value. The first purchase day is not a repeat purchase, so
  ``frequency = purchase days - 1``.
* ``P(alive) = 1`` for a customer without repeat purchases: in the BG/NBD a customer can only
  drop out right after a repeat purchase, so the formula's second term vanishes at x = 0.
  This is the model's known property (the MBG/NBD variant changes it), not a special case
  added here.

Numerics: every per-customer quantity is vectorised; the terms that depend on x alone
(gammaln, digamma) are computed once per distinct x. The BG/NBD log-likelihood is
``A + log(exp(t1) + exp(t2))`` written as ``A + t1 + softplus(d)`` with ``d = t2 - t1``, which
is also ``logit(1 - P(alive))``; eqs. 9 and 10 are evaluated through Euler's transformation
of their hypergeometric term (see ``_bgnbd_bracket``), checked against mpmath at 40 digits
over a wide grid of parameters, frequencies and horizons. Parameters are optimised in log
space with L-BFGS-B and the analytic gradient (Nelder-Mead then L-BFGS-B again if that stops
early where the gradient is not yet flat), the BG/NBD over the distinct (x, t_x, T) weighted
by their customers.

``summary_from_aggregates``, ``holdout_check`` and ``cumulative_tracking_from_counts`` take
what a database's GROUP BY gives (per customer, per day), so a service need not hold every
purchase in memory; the functions on transaction tables compute the same pieces with pandas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

UNIT_DAYS: dict[str, int] = {"days": 1, "weeks": 7}

# Log-parameters are kept within these bounds: e^-15 .. e^15 (3e-7 .. 3e6).
_LOG_BOUND = 15.0


def unit_days(unit: str) -> int:
    """Length of a time unit ("days" or "weeks") in days."""
    try:
        return UNIT_DAYS[unit]
    except KeyError:
        raise ValueError(f"unit must be one of {sorted(UNIT_DAYS)}, not {unit!r}") from None


# ---------------------------------------------------------------------------------------
# Summaries from transactions
# ---------------------------------------------------------------------------------------


def _purchase_days(
    transactions: pd.DataFrame, customer: str, date: str, amount: str | None
) -> pd.DataFrame:
    """One row per customer and purchase day: columns customer, day, value (day's total).

    Rows with a negative amount (returns) are left out: they are not purchases and do not
    reduce the value of the day they fall on. Zero amounts are purchases.
    """
    day = pd.to_datetime(transactions[date]).dt.tz_localize(None).dt.normalize()
    frame = pd.DataFrame({"customer": transactions[customer].to_numpy(), "day": day.to_numpy()})
    if amount is not None:
        values = pd.to_numeric(transactions[amount]).to_numpy(dtype=float)
        frame["value"] = values
        frame = frame[values >= 0]
    else:
        frame["value"] = 0.0
    per_day = frame.groupby(["customer", "day"], sort=True, observed=True)["value"].sum()
    return per_day.reset_index()


def _timestamp(value: object) -> pd.Timestamp:
    return pd.Timestamp(value).tz_localize(None).normalize()


def summarise_transactions(
    transactions: pd.DataFrame,
    end: object,
    *,
    unit: str = "weeks",
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
) -> pd.DataFrame:
    """Per-customer (frequency, recency, T, monetary_value) as of the day ``end``.

    ``transactions`` has a row per purchase with a customer column, a date (or date and time;
    the time of day is dropped) and, unless ``amount`` is None, an amount (negative = a
    return, left out). Purchases after ``end`` are ignored and customers whose first purchase
    is after it are not in the result. Time is measured in ``unit`` ("weeks" or "days") from
    each customer's first purchase day, as in the BG/NBD paper:

    * ``frequency``: repeat purchase days (purchase days - 1);
    * ``recency``: last purchase day - first purchase day (0 without repeat purchases);
    * ``T``: ``end`` - first purchase day;
    * ``monetary_value``: mean value of the repeat purchase days (each day's total), the
      first purchase excluded; 0 without repeat purchases (the ``lifetimes`` convention);
    * ``first_purchase``: the first purchase day.

    The index is the customer ID, sorted.
    """
    days_per_unit = unit_days(unit)
    columns = [customer, date] + ([amount] if amount is not None else [])
    per_day = _purchase_days(transactions[columns], customer, date, amount)
    summary = _summary_from_days(per_day, _timestamp(end), days_per_unit)
    summary.index.name = customer
    if amount is None:
        summary["monetary_value"] = 0.0
    return summary


def _summary_from_days(per_day: pd.DataFrame, end_day: pd.Timestamp, days_per_unit: int):
    per_day = per_day[per_day["day"] <= end_day]
    grouped = per_day.groupby("customer", sort=True)
    first = grouped["day"].min()
    first_value = grouped["value"].first()  # rows are sorted by day within a customer
    return summary_from_aggregates(
        first_purchase=first,
        last_purchase=grouped["day"].max(),
        repeat_days=grouped["day"].size() - 1,
        repeat_value=grouped["value"].sum() - first_value,
        end=end_day,
        unit_days=days_per_unit,
    )


def summary_from_aggregates(
    *,
    first_purchase: pd.Series,
    last_purchase: pd.Series,
    repeat_days: pd.Series,
    repeat_value: pd.Series,
    end: object,
    unit_days: int,
) -> pd.DataFrame:
    """The ``summarise_transactions`` table from per-customer aggregates (first and last
    purchase day, purchase days after the first, their total value), as a database's
    GROUP BY gives them; every series has the customer as its index."""
    end_day = _timestamp(end)
    frequency = repeat_days.to_numpy(dtype=np.int64)
    repeat_total = repeat_value.to_numpy(dtype=float)
    monetary = np.divide(repeat_total, frequency, out=np.zeros(len(frequency)), where=frequency > 0)
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last_purchase - first_purchase).dt.days.to_numpy() / unit_days,
            "T": (end_day - first_purchase).dt.days.to_numpy() / unit_days,
            "monetary_value": monetary,
            "first_purchase": first_purchase.to_numpy(),
        },
        index=first_purchase.index,
    )


# ---------------------------------------------------------------------------------------
# Optimisation helpers
# ---------------------------------------------------------------------------------------


def _as_float(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=float)


# An L-BFGS-B stop for want of a lower value (its line search failed) is accepted as the
# optimum when no log-parameter could still move the objective by more than this per unit
# (the projected gradient; L-BFGS-B's own test is 1e-9): the objective is a mean over
# customers, flat to the last digits there. A model that runs off to a bound ends so.
_STATIONARY_GRADIENT = 1e-6


def _minimise(
    objective: Callable[..., tuple[float, np.ndarray | None]], start: np.ndarray
) -> tuple[np.ndarray, bool]:
    """Minimise an objective over log-parameters; returns (x, converged).

    ``objective(z)`` gives (value, gradient); ``objective(z, False)`` the value alone
    (gradient None), all Nelder-Mead needs."""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    options = {"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9}
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    if not result.success and _stationary(objective, result.x):
        return result.x, not _at_bound(result.x)
    if not result.success or not np.all(np.isfinite(result.x)):
        # Nelder-Mead from where L-BFGS-B stopped (or from the start), then polish. Each
        # of its thousands of steps is one pass over the customers (a million at most).
        seed = result.x if np.all(np.isfinite(result.x)) else start
        coarse = minimize(
            lambda z: objective(z, False)[0],
            seed,
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-12},
        )
        clipped = np.clip(coarse.x, -_LOG_BOUND, _LOG_BOUND)
        result = minimize(
            objective, clipped, jac=True, method="L-BFGS-B", bounds=bounds, options=options
        )
    return result.x, bool(result.success) and not _at_bound(result.x)


def _at_bound(x: np.ndarray) -> bool:
    """A parameter at e^-15 or e^15 ran off: the history does not pin it down (a log where
    nobody drops out sends a to 0), so the model is not a fit, whatever the optimiser says."""
    return bool(np.any(np.abs(x) >= _LOG_BOUND * (1 - 1e-9)))


def _stationary(objective: Callable[..., tuple[float, np.ndarray | None]], x: np.ndarray) -> bool:
    """True when no coordinate of the gradient at x points into the box by more than
    _STATIONARY_GRADIENT (at a bound, only the way into the box counts)."""
    if not np.all(np.isfinite(x)):
        return False
    value, gradient = objective(x)
    if value >= 1e300 or gradient is None:
        return False
    inward = np.where(x <= -_LOG_BOUND, np.minimum(gradient, 0.0), gradient)
    inward = np.where(x >= _LOG_BOUND, np.maximum(inward, 0.0), inward)
    return bool(np.max(np.abs(inward)) <= _STATIONARY_GRADIENT)


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and the index of each element in them (functions of x alone are
    evaluated once per distinct x)."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse.reshape(values.shape)


# ---------------------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------------------


def _check_rft(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike):
    x, t_x, age = np.broadcast_arrays(_as_float(frequency), _as_float(recency), _as_float(T))
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > age + 1e-9):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T")
    return x, t_x, age


def _bgnbd_terms(params: np.ndarray, x, t_x, age, inverse, distinct, with_gradient: bool):
    """Per-customer log-likelihood (and its gradient w.r.t. (r, alpha, a, b))."""
    r, alpha, a, b = params
    # Terms of x alone, once per distinct x.
    u = distinct
    lg_rx = gammaln(r + u)[inverse]
    beta_part = (gammaln(b + u) - gammaln(a + b + u))[inverse] - gammaln(b) + gammaln(a + b)
    has_repeat = x > 0
    log_ab = np.log(alpha + age)
    log_at = np.log(alpha + t_x)
    # ll = A + t1 + softplus(d):  A = log Gamma(r+x) - log Gamma(r) + r log alpha,
    # t1 = log B(a, b+x) - log B(a, b) - (r+x) log(alpha+T),
    # d = t2 - t1 = log a - log(b+x-1) + (r+x) (log(alpha+T) - log(alpha+t_x)), x > 0.
    b_x1 = np.where(has_repeat, b + x - 1.0, 1.0)
    d = np.where(has_repeat, np.log(a) - np.log(b_x1) + (r + x) * (log_ab - log_at), -np.inf)
    t1 = beta_part - (r + x) * log_ab
    ll = lg_rx - gammaln(r) + r * math.log(alpha) + t1 + np.logaddexp(0.0, d)
    if not with_gradient:
        return ll, None
    w2 = expit(d)  # weight of the second term = 1 - P(alive)
    w1 = 1.0 - w2
    dg_rx = digamma(r + u)[inverse]
    dg_abx = digamma(a + b + u)[inverse]
    dg_bx = digamma(b + u)[inverse]
    dr = dg_rx - digamma(r) + math.log(alpha) - w1 * log_ab - w2 * log_at
    dalpha = r / alpha - (r + x) * (w1 / (alpha + age) + w2 / (alpha + t_x))
    dg_ab = digamma(a + b)
    da = dg_ab - dg_abx + w2 / a
    db = dg_ab - dg_abx - digamma(b) + dg_bx - w2 / b_x1
    return ll, np.stack([dr, dalpha, da, db])


def bgnbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, frequency, recency, T
) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (eq. 6 of the paper)."""
    x, t_x, age = _check_rft(frequency, recency, T)
    distinct, inverse = _distinct(x)
    ll, _ = _bgnbd_terms(np.array([r, alpha, a, b]), x, t_x, age, inverse, distinct, False)
    return ll


def _bgnbd_bracket(r: float, a: float, b: float, x, scale, t) -> np.ndarray:
    """1 - (s/(s+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(s+t)), s = alpha + T (eqs. 9 and 10).

    Evaluated through Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B;
    C; z), which turns it into 1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): the first two
    parameters no longer grow with x and no large power multiplies a large hypergeometric
    value. Where scipy's hyp2f1 still gives no finite value (z near 1 with large x and
    a > 1) the hypergeometric series is summed directly; it converges quickly there
    because its terms fall like n^-(x+r-a+2).
    """
    x, scale, t = np.broadcast_arrays(_as_float(x), _as_float(scale), _as_float(t))
    one_minus_z = scale / (scale + t)
    z = t / (scale + t)
    A, B, C = a + b - 1.0 - r, a - 1.0, a + b + x - 1.0
    with np.errstate(all="ignore"):
        hyp = np.asarray(hyp2f1(A, B, C, z), dtype=float)
    failed = ~np.isfinite(hyp)
    if np.any(failed):
        hyp = hyp.copy()
        hyp[failed] = _hyp2f1_series(A, B, C[failed], z[failed])
    with np.errstate(over="ignore", divide="ignore"):
        return 1.0 - one_minus_z ** (a - 1.0) * hyp


def _hyp2f1_series(A: float, B: float, C: np.ndarray, z: np.ndarray) -> np.ndarray:
    """2F1(A, B; C; z) by summing its power series (0 <= z < 1), until every term is
    below 1e-17 of the sum and shrinking; NaN where that takes more than 100,000 terms."""
    total = np.ones_like(z)
    term = np.ones_like(z)
    active = np.ones(z.shape, dtype=bool)
    for n in range(100_000):
        ratio = (A + n) * (B + n) / ((C[active] + n) * (n + 1.0)) * z[active]
        term[active] *= ratio
        total[active] += term[active]
        done = (np.abs(term[active]) <= 1e-17 * np.abs(total[active])) & (np.abs(ratio) < 1)
        active[np.flatnonzero(active)[done]] = False
        if not active.any():
            return total
    total[active] = np.nan
    return total


@dataclass(frozen=True)
class BGNBD:
    """A fitted BG/NBD model. Times (``t``, ``recency``, ``T``) are in ``unit``."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int
    unit: str = "weeks"
    converged: bool = True

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def periods(self, days: float) -> float:
        """A number of days in the model's time unit."""
        return days / unit_days(self.unit)

    def log_likelihood_per_customer(self, frequency, recency, T) -> np.ndarray:
        return bgnbd_log_likelihood(self.r, self.alpha, self.a, self.b, frequency, recency, T)

    def _log_odds_dead(self, x, t_x, age) -> np.ndarray:
        """log((1 - P(alive)) / P(alive)); -inf without repeat purchases."""
        has_repeat = x > 0
        b_x1 = np.where(has_repeat, self.b + x - 1.0, 1.0)
        log_ratio = np.log(self.alpha + age) - np.log(self.alpha + t_x)
        return np.where(
            has_repeat,
            math.log(self.a) - np.log(b_x1) + (self.r + x) * log_ratio,
            -np.inf,
        )

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

        Exactly 1 for x = 0 (a customer can only drop out after a repeat purchase).
        """
        x, t_x, age = _check_rft(frequency, recency, T)
        return expit(-self._log_odds_dead(x, t_x, age))

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected repeat purchases in the next ``t`` units (eq. 10).

            (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]
            --------------------------------------------------------------------------
                       1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)

        with z = t/(alpha+T+t). ``t`` broadcasts against the customers.
        """
        x, t_x, age = _check_rft(frequency, recency, T)
        t = _as_float(t)
        a = self._a_off_one()
        r, alpha, b = self.r, self.alpha, self.b
        c = a + b + x - 1.0
        bracket = _bgnbd_bracket(r, a, b, x, alpha + age, t)
        return c / (a - 1.0) * bracket * expit(-self._log_odds_dead(x, t_x, age))

    def expected_purchases_new(self, t) -> np.ndarray:
        """E[X(t)]: expected repeat purchases of a new customer by time ``t`` (eq. 9).

            (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]

        (eq. 10 at x = t_x = T = 0).
        """
        t = _as_float(t)
        a = self._a_off_one()
        bracket = _bgnbd_bracket(self.r, a, self.b, np.zeros(()), self.alpha, t)
        return (a + self.b - 1.0) / (a - 1.0) * bracket

    def _a_off_one(self) -> float:
        # Eqs. 9 and 10 have a removable singularity at a = 1; step just off it.
        return self.a if abs(self.a - 1.0) > 1e-7 else 1.0 + 1e-7


def fit_bgnbd(frequency, recency, T, *, unit: str = "weeks", weights=None) -> BGNBD:
    """Maximum-likelihood BG/NBD fit on per-customer (frequency, recency, T) in ``unit``.

    ``weights`` (optional) counts how many customers each row stands for.
    """
    unit_days(unit)
    x, t_x, age = _check_rft(frequency, recency, T)
    x, t_x, age = x.ravel(), t_x.ravel(), age.ravel()
    w = np.ones_like(x) if weights is None else _as_float(weights).ravel()
    if x.size == 0 or not np.any(x > 0):
        raise ValueError("the BG/NBD needs customers with repeat purchases")
    total = float(w.sum())
    x, t_x, age, w = _distinct_customers(x, t_x, age, w)
    distinct, inverse = _distinct(x)

    def objective(log_params: np.ndarray, with_gradient: bool = True):
        params = np.exp(log_params)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, grad = _bgnbd_terms(params, x, t_x, age, inverse, distinct, with_gradient)
            value = -float(w @ ll) / total
            gradient = -(grad @ w) * params / total if with_gradient else None
        if not np.isfinite(value) or (with_gradient and not np.all(np.isfinite(gradient))):
            return 1e300, np.zeros_like(log_params)
        return value, gradient

    # Start: r = 1, a = b = 1, alpha = mean age (alpha is a time scale, so the unit matters).
    start = np.log([1.0, max(float(np.average(age, weights=w)), 1e-3), 1.0, 1.0])
    log_params, converged = _minimise(objective, start)
    r, alpha, a, b = (float(v) for v in np.exp(log_params))
    ll = float(w @ bgnbd_log_likelihood(r, alpha, a, b, x, t_x, age))
    return BGNBD(r, alpha, a, b, ll, int(round(total)), unit, converged)


def _distinct_customers(x, t_x, age, w):
    """One row per distinct (x, t_x, T), weighted by the customers it stands for: the
    likelihood is a weighted sum, and customers measured in days share their triple often
    (a million customers over two years have about 400,000 triples, most one-time buyers
    sharing one with everybody who started on their day)."""
    triples, inverse = np.unique(np.stack([x, t_x, age], axis=1), axis=0, return_inverse=True)
    weights = np.bincount(inverse.ravel(), weights=w, minlength=len(triples))
    return triples[:, 0], triples[:, 1], triples[:, 2], weights


# ---------------------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------------------


def _gamma_gamma_terms(params, x, log_x, m, log_m, inverse, distinct, with_gradient: bool):
    p, q, v = params
    u = distinct
    px = p * x
    log_vxm = np.log(v + x * m)
    lg = (gammaln(p * u + q) - gammaln(p * u))[inverse]
    ll = lg - gammaln(q) + q * math.log(v) + (px - 1.0) * log_m + px * log_x - (px + q) * log_vxm
    if not with_gradient:
        return ll, None
    dg_pxq = digamma(p * u + q)[inverse]
    dg_px = digamma(p * u)[inverse]
    dp = x * (dg_pxq - dg_px + log_m + log_x - log_vxm)
    dq = dg_pxq - digamma(q) + math.log(v) - log_vxm
    dv = q / v - (px + q) / (v + x * m)
    return ll, np.stack([dp, dq, dv])


def _check_spend(frequency, monetary_value):
    x, m = np.broadcast_arrays(_as_float(frequency), _as_float(monetary_value))
    if np.any(x <= 0) or np.any(m <= 0):
        raise ValueError("the Gamma-Gamma needs frequency > 0 and monetary_value > 0")
    return x, m


def gamma_gamma_log_likelihood(p: float, q: float, v: float, frequency, monetary_value):
    """Each repeat customer's Gamma-Gamma log-likelihood of the mean spend ``monetary_value``
    over ``frequency`` repeat purchases (Fader & Hardie 2013, eq. 3)."""
    x, m = _check_spend(frequency, monetary_value)
    distinct, inverse = _distinct(x)
    params = np.array([p, q, v])
    ll, _ = _gamma_gamma_terms(params, x, np.log(x), m, np.log(m), inverse, distinct, False)
    return ll


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model (v is the paper's gamma)."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: int
    converged: bool = True

    @property
    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "v": self.v}

    @property
    def mean_spend(self) -> float:
        """Population mean spend per purchase, p v / (q - 1) (infinite when q <= 1)."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else math.inf

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[mean spend | x, mean spend] = p (v + x m) / (p x + q - 1).

        A weighted average of the population mean and the customer's own mean; customers
        without repeat purchases (x = 0) get the population mean, whatever their ``m``
        (infinite if the fit has q <= 1).
        """
        x, m = np.broadcast_arrays(_as_float(frequency), _as_float(monetary_value))
        m = np.where(x > 0, m, 0.0)
        denominator = self.p * x + self.q - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, self.p * (self.v + x * m) / denominator, np.inf)


def fit_gamma_gamma(frequency, monetary_value, *, weights=None) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma fit on repeat customers' (frequency, mean spend).

    Customers without repeat purchases or with a mean spend <= 0 are left out (the model
    is for positive spends); ``n_customers`` says how many were used.
    """
    x_all, m_all = np.broadcast_arrays(_as_float(frequency), _as_float(monetary_value))
    w_all = np.ones(x_all.shape) if weights is None else _as_float(weights)
    keep = (x_all > 0) & (m_all > 0) & np.isfinite(m_all)
    x, m, w = x_all[keep].ravel(), m_all[keep].ravel(), np.broadcast_to(w_all, x_all.shape)[keep]
    if x.size < 2:
        raise ValueError("the Gamma-Gamma needs repeat customers with a positive spend")
    total = float(w.sum())
    log_x, log_m = np.log(x), np.log(m)
    distinct, inverse = _distinct(x)

    def objective(log_params: np.ndarray, with_gradient: bool = True):
        params = np.exp(log_params)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, grad = _gamma_gamma_terms(
                params, x, log_x, m, log_m, inverse, distinct, with_gradient
            )
            value = -float(w @ ll) / total
            gradient = -(grad @ w) * params / total if with_gradient else None
        if not np.isfinite(value) or (with_gradient and not np.all(np.isfinite(gradient))):
            return 1e300, np.zeros_like(log_params)
        return value, gradient

    # Start: p = 1, q = 2 (finite mean), v = mean spend (v / (q-1) = mean when p = 1).
    start = np.log([1.0, 2.0, float(np.average(m, weights=w))])
    log_params, converged = _minimise(objective, start)
    p, q, v = (float(val) for val in np.exp(log_params))
    ll = float(w @ gamma_gamma_log_likelihood(p, q, v, x, m))
    return GammaGamma(p, q, v, ll, int(round(total)), converged)


# ---------------------------------------------------------------------------------------
# CLV
# ---------------------------------------------------------------------------------------


def customer_lifetime_value(
    bgnbd: BGNBD,
    gamma_gamma: GammaGamma,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    days: float,
    annual_discount_rate: float = 0.0,
    step_days: float = 30.0,
) -> np.ndarray:
    """Expected value of each customer's purchases in the next ``days`` days.

    Without discounting: E[Y(days) | x, t_x, T] x E[spend | x, m]. With an annual discount
    rate d, the horizon is cut into steps of ``step_days`` (the last one may be shorter);
    the purchases expected in a step are valued at its end, discounted by
    (1 + d)^(-end / 365.25). ``recency`` and ``T`` are in the BG/NBD's unit.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    spend = gamma_gamma.expected_spend(frequency, monetary_value)
    if annual_discount_rate == 0.0:
        return bgnbd.expected_purchases(bgnbd.periods(days), frequency, recency, T) * spend
    ends = np.append(np.arange(step_days, days, step_days), days) if days > 0 else np.array([])
    value = np.zeros(np.broadcast(_as_float(frequency), _as_float(recency)).shape)
    before = 0.0
    for end in ends:
        cumulative = bgnbd.expected_purchases(bgnbd.periods(end), frequency, recency, T)
        value = value + (cumulative - before) * (1.0 + annual_discount_rate) ** (-end / 365.25)
        before = cumulative
    return value * spend


def predict_customers(
    summary: pd.DataFrame,
    bgnbd: BGNBD,
    gamma_gamma: GammaGamma | None = None,
    *,
    days: float,
    annual_discount_rate: float = 0.0,
) -> pd.DataFrame:
    """Per customer of a ``summarise_transactions`` table (in the BG/NBD's unit):
    ``repeat_purchases`` (x), ``p_alive``, ``expected_purchases`` in the next ``days``
    days and, with a Gamma-Gamma model, ``expected_spend`` (per purchase) and
    ``expected_value`` of those purchases."""
    args = (summary["frequency"], summary["recency"], summary["T"])
    out = pd.DataFrame(index=summary.index)
    out["repeat_purchases"] = summary["frequency"].to_numpy().astype(np.int64)
    out["p_alive"] = bgnbd.p_alive(*args)
    out["expected_purchases"] = bgnbd.expected_purchases(bgnbd.periods(days), *args)
    if gamma_gamma is not None:
        out["expected_spend"] = gamma_gamma.expected_spend(
            summary["frequency"], summary["monetary_value"]
        )
        out["expected_value"] = customer_lifetime_value(
            bgnbd,
            gamma_gamma,
            *args,
            summary["monetary_value"],
            days=days,
            annual_discount_rate=annual_discount_rate,
        )
    return out


# ---------------------------------------------------------------------------------------
# Calibration / holdout check
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutCheck:
    """A BG/NBD fitted on the calibration period, checked against the holdout period.

    ``customers``: per calibration customer, the calibration summary and the ``expected``
    and ``actual`` repeat purchases (purchase days) in the holdout period.
    ``by_frequency``: their means by calibration frequency (the paper's conditional
    expectations figure; the last row groups ``max_frequency`` and more).
    ``cumulative``: per period since the first customer's first purchase, cumulative repeat
    purchases of the calibration customers, ``actual`` and ``predicted`` (the paper's
    tracking figure); ``calibration_periods`` is where the calibration period ends on it.
    """

    model: BGNBD
    holdout_periods: float
    calibration_periods: float
    customers: pd.DataFrame
    total_expected: float
    total_actual: int
    correlation: float
    by_frequency: pd.DataFrame
    cumulative: pd.DataFrame


def calibration_holdout_check(
    transactions: pd.DataFrame,
    calibration_end: object,
    observation_end: object,
    *,
    unit: str = "weeks",
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    max_frequency: int = 7,
) -> HoldoutCheck:
    """Fit a BG/NBD on purchases up to ``calibration_end`` (inclusive) and compare its
    expectations with the purchases after it, up to ``observation_end`` (inclusive).

    Only customers whose first purchase is in the calibration period take part.
    """
    cal_end, obs_end = _timestamp(calibration_end), _timestamp(observation_end)
    if obs_end <= cal_end:
        raise ValueError("observation_end must be after calibration_end")
    columns = [customer, date] + ([amount] if amount is not None else [])
    per_day = _purchase_days(transactions[columns], customer, date, amount)
    per_day = per_day[per_day["day"] <= obs_end]
    summary = _summary_from_days(per_day, cal_end, unit_days(unit))
    summary.index.name = customer
    in_holdout = per_day[per_day["day"] > cal_end]
    actual = in_holdout.groupby("customer").size().reindex(summary.index, fill_value=0)
    return holdout_check(
        summary,
        actual,
        _repeat_days_by_day(per_day, summary["first_purchase"]),
        cal_end,
        obs_end,
        unit=unit,
        max_frequency=max_frequency,
    )


def holdout_check(
    summary: pd.DataFrame,
    actual: pd.Series,
    repeat_by_day: pd.Series,
    calibration_end: object,
    observation_end: object,
    *,
    unit: str = "weeks",
    max_frequency: int = 7,
) -> HoldoutCheck:
    """``calibration_holdout_check`` from what a database can count: the calibration
    ``summary`` (as of ``calibration_end``, in ``unit``), each of its customers' ``actual``
    purchase days after it (same index) and ``repeat_by_day``, the repeat purchase days of
    those customers on each day up to ``observation_end`` (index: the day)."""
    days_per_unit = unit_days(unit)
    cal_end, obs_end = _timestamp(calibration_end), _timestamp(observation_end)
    if obs_end <= cal_end:
        raise ValueError("observation_end must be after calibration_end")
    model = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"], unit=unit)
    holdout_periods = (obs_end - cal_end).days / days_per_unit
    expected = model.expected_purchases(
        holdout_periods, summary["frequency"], summary["recency"], summary["T"]
    )
    actual = actual.to_numpy(dtype=np.int64)
    customers = summary.assign(expected=expected, actual=actual)
    correlation = float(np.corrcoef(customers["expected"], customers["actual"])[0, 1])

    bucket = customers["frequency"].clip(upper=max_frequency)
    by_frequency = customers.groupby(bucket).agg(
        customers=("expected", "size"), expected=("expected", "mean"), actual=("actual", "mean")
    )
    by_frequency.index.name = "frequency"

    cumulative, calibration_periods = _cumulative_tracking(
        model, repeat_by_day, summary["first_purchase"], cal_end, obs_end, days_per_unit
    )
    return HoldoutCheck(
        model=model,
        holdout_periods=holdout_periods,
        calibration_periods=calibration_periods,
        customers=customers,
        total_expected=float(expected.sum()),
        total_actual=int(actual.sum()),
        correlation=correlation,
        by_frequency=by_frequency,
        cumulative=cumulative,
    )


def _repeat_days_by_day(per_day: pd.DataFrame, first: pd.Series) -> pd.Series:
    """Repeat purchase days (after each customer's first) of the customers of ``first``,
    counted per day."""
    cohort = per_day[per_day["customer"].isin(first.index)]
    repeat = cohort["day"].to_numpy() > first.reindex(cohort["customer"]).to_numpy()
    return cohort["day"][repeat].value_counts()


def _cumulative_tracking(model, repeat_by_day, first, cal_end, obs_end, days_per_unit):
    """Cumulative repeat purchases by period, actual and predicted (eq. 9 per customer).

    Period k covers days [start + (k-1) u, start + k u - 1] (u = days per unit, start = the
    first customer's first purchase day), cut at ``obs_end``. At the last day of a period,
    a customer's age is measured as T is: (that day - first purchase day) / u.
    """
    start = first.min()
    span_days = (obs_end - start).days + 1
    n_periods = math.ceil(span_days / days_per_unit)
    ends = np.minimum(np.arange(1, n_periods + 1) * days_per_unit - 1, span_days - 1)

    offsets = (pd.DatetimeIndex(repeat_by_day.index) - start).days.to_numpy()
    order = np.argsort(offsets, kind="stable")
    running = np.concatenate([[0], np.cumsum(repeat_by_day.to_numpy(dtype=np.int64)[order])])
    actual = running[np.searchsorted(offsets[order], ends, side="right")]

    # Customers sharing a first purchase day share their expectation curve.
    first_offsets = ((first - start).dt.days).to_numpy()
    distinct_offsets, counts = np.unique(first_offsets, return_counts=True)
    ages = (ends[:, None] - distinct_offsets[None, :]) / days_per_unit
    per_customer = np.where(ages > 0, model.expected_purchases_new(np.maximum(ages, 0.0)), 0.0)
    predicted = per_customer @ counts

    cumulative = pd.DataFrame(
        {
            "end": start + pd.to_timedelta(ends, unit="D"),
            "actual": actual.astype(int),
            "predicted": predicted,
        },
        index=pd.RangeIndex(1, n_periods + 1, name="period"),
    )
    calibration_periods = ((cal_end - start).days + 1) / days_per_unit
    return cumulative, calibration_periods


# ---------------------------------------------------------------------------------------
# Simulation (tests and benchmarks)
# ---------------------------------------------------------------------------------------


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, T, *, seed=None
) -> pd.DataFrame:
    """Draw n customers' (frequency, recency, T) from a BG/NBD with the given parameters.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); purchases arrive at rate lambda over
    (0, T]; the customer drops out after the J-th repeat purchase, J ~ Geometric(p). So
    x = min(J, N) with N ~ Poisson(lambda T), and the x-th of N uniform arrival times is
    T x Beta(x, N - x + 1).
    """
    rng = np.random.default_rng(seed)
    age = np.broadcast_to(_as_float(T), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * age)
    dropout_after = rng.geometric(p)
    x = np.minimum(arrivals, dropout_after)
    has_repeat = x > 0
    t_x = np.zeros(n)
    t_x[has_repeat] = age[has_repeat] * rng.beta(
        x[has_repeat], arrivals[has_repeat] - x[has_repeat] + 1
    )
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": age})


def simulate_gamma_gamma(frequency, p: float, q: float, v: float, *, seed=None) -> np.ndarray:
    """Mean spend of each customer's ``frequency`` purchases under a Gamma-Gamma model
    (purchase values ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v)); NaN where frequency is 0."""
    rng = np.random.default_rng(seed)
    x = _as_float(frequency)
    nu = rng.gamma(q, 1.0 / v, x.shape)
    safe = np.maximum(x, 1.0)
    mean = rng.gamma(p * safe, 1.0 / (safe * nu))
    return np.where(x > 0, mean, np.nan)


def simulate_transactions(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    start: object,
    end: object,
    acquisition_days: int = 84,
    unit: str = "weeks",
    spend: tuple[float, float, float] | None = None,
    seed=None,
) -> pd.DataFrame:
    """A transaction table (customer_id, date, amount) drawn from a BG/NBD (and, with
    ``spend = (p, q, v)``, a Gamma-Gamma; otherwise every amount is 1).

    Customer i makes a first purchase on a day drawn uniformly from the ``acquisition_days``
    days from ``start``, then repeat purchases in continuous time (rate per ``unit``) until
    dropout or ``end`` (inclusive); a purchase at time t after the first is dated
    first day + floor(t in days). Purchases falling on the same day become separate rows (and
    one purchase day in the summaries), which the model does not know about; at modest
    rates that is rare.
    """
    rng = np.random.default_rng(seed)
    days_per_unit = unit_days(unit)
    start_day, end_day = _timestamp(start), _timestamp(end)
    first = rng.integers(0, acquisition_days, n)
    horizon = ((end_day - start_day).days + 1 - first) / days_per_unit
    if np.any(horizon <= 0):
        raise ValueError("end must be after the acquisition period")
    lam = rng.gamma(r, 1.0 / alpha, n)
    dropout_p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * horizon)
    kept = np.minimum(arrivals, rng.geometric(dropout_p))
    # Arrival times are uniform order statistics on (0, horizon); keep each customer's first
    # ``kept`` of them.
    owner = np.repeat(np.arange(n), arrivals)
    times = rng.uniform(0.0, 1.0, owner.size) * horizon[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < kept[owner]
    owner, times = owner[keep], times[keep]
    day_offsets = np.concatenate([first, first[owner] + np.floor(times * days_per_unit)])
    customers = np.concatenate([np.arange(n), owner])
    if spend is None:
        amounts = np.ones(customers.size)
    else:
        p, q, v = spend
        nu = rng.gamma(q, 1.0 / v, n)
        amounts = rng.gamma(p, 1.0 / nu[customers])
    frame = pd.DataFrame(
        {
            "customer_id": customers + 1,
            "date": start_day + pd.to_timedelta(day_offsets, unit="D"),
            "amount": np.round(amounts, 2),
        }
    )
    return frame.sort_values(["customer_id", "date"], kind="stable", ignore_index=True)


def cumulative_tracking(
    transactions: pd.DataFrame,
    model: BGNBD,
    observation_end: object,
    *,
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
) -> pd.DataFrame:
    """Cumulative repeat purchases by period over the whole history, actual and as the
    fitted ``model`` expects them (the tracking figure for a model fitted on everything)."""
    end = _timestamp(observation_end)
    columns = [customer, date] + ([amount] if amount is not None else [])
    per_day = _purchase_days(transactions[columns], customer, date, amount)
    per_day = per_day[per_day["day"] <= end]
    first = per_day.groupby("customer")["day"].min()
    return cumulative_tracking_from_counts(model, first, _repeat_days_by_day(per_day, first), end)


def cumulative_tracking_from_counts(
    model: BGNBD, first_purchase: pd.Series, repeat_by_day: pd.Series, observation_end: object
) -> pd.DataFrame:
    """``cumulative_tracking`` from each customer's first purchase day and the repeat
    purchase days counted per day (index: the day), as a database's GROUP BY gives them."""
    end = _timestamp(observation_end)
    days_per_unit = unit_days(model.unit)
    cumulative, _periods = _cumulative_tracking(
        model, repeat_by_day, first_purchase, end, end, days_per_unit
    )
    return cumulative
