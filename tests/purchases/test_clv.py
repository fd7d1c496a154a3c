"""BG/NBD, Gamma-Gamma and CLV (purchases.clv) against the published CDNOW figures.

The data is the CDNOW 1/10 sample shipped in tests/purchases/data (see its README). The
reference figures and where they come from:

* BG/NBD on the 39-week calibration period (1997-01-01 to 1997-09-30, time in weeks, T and
  t_x from each customer's first purchase): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
  LL = -9582.4 (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", sec. 5).
* Values of Hardie's BG/NBD spreadsheet for these parameters, as reproduced by the lifetimes
  and BTYD test suites: E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226 and
  E[X(t)] = 0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576 at t = 0.1429, 1, 3, 31.8571,
  32, 78.
* Gamma-Gamma on the 946 customers with repeat purchases in the same 39-week calibration
  period, spend = mean value of the repeat purchase days: p = 6.25, q = 3.74, v = 15.44
  (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value"; the lifetimes README
  fits the same 946 customers, its 39-week ``cdnow_customers_summary_with_transactions``,
  and prints p = 6.25, q = 3.74, v = 15.45). It is the calibration period, not the whole 78
  weeks: on 78 weeks the same fit gives p = 4.68, q = 4.19, v = 24.4.

No database is used: these are plain functions.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeResult

from purchases import clv

DATA = Path(__file__).parent / "data" / "CDNOW_sample.txt"
CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = pd.read_csv(
        DATA,
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "quantity", "amount"],
        dtype={"date": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def calibration(cdnow) -> pd.DataFrame:
    return clv.summarise_transactions(cdnow, CALIBRATION_END, unit="weeks")


@pytest.fixture(scope="module")
def bgnbd(calibration) -> clv.BGNBD:
    return clv.fit_bgnbd(calibration["frequency"], calibration["recency"], calibration["T"])


@pytest.fixture(scope="module")
def gamma_gamma(calibration) -> clv.GammaGamma:
    return clv.fit_gamma_gamma(calibration["frequency"], calibration["monetary_value"])


@pytest.fixture(scope="module")
def holdout(cdnow) -> clv.HoldoutCheck:
    return clv.calibration_holdout_check(cdnow, CALIBRATION_END, OBSERVATION_END, unit="weeks")


# --- Summaries ---------------------------------------------------------------------------


def test_cdnow_summary_matches_hardies_calibration_summary(cdnow, calibration):
    """Spot rows and totals of Hardie's own (x, t_x, T, zbar) summary of the sample."""
    assert len(calibration) == 2357
    assert calibration["frequency"].sum() == 2457
    assert (calibration["frequency"] > 0).sum() == 946
    expected = {  # customer: (x, t_x, T, zbar), as in Hardie's summary (2 decimals)
        1: (2, 30.43, 38.86, 22.35),
        2: (1, 1.71, 38.86, 11.77),
        3: (0, 0.00, 38.86, 0.00),
        18: (1, 4.86, 38.86, 9.99),
        26: (1, 1.57, 38.71, 227.14),  # two purchases on 1997-01-13: one repeat purchase
        61: (4, 29.43, 38.43, 53.40),  # same-day purchases merged, day totals averaged
        157: (29, 37.71, 38.00, 26.26),
        2357: (0, 0.00, 27.00, 0.00),
    }
    for customer, (x, t_x, age, zbar) in expected.items():
        row = calibration.loc[customer]
        assert row["frequency"] == x
        # Hardie's figures are rounded to 2 decimals.
        assert row["recency"] == pytest.approx(t_x, abs=0.0051)
        assert row["T"] == pytest.approx(age, abs=0.0051)
        assert row["monetary_value"] == pytest.approx(zbar, abs=0.0051)


def test_summary_counts_purchase_days_and_leaves_out_returns():
    transactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "b", "b", "c"],
            "date": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 17:30",  # same day: one purchase day worth 30
                    "2024-01-08 10:00",
                    "2024-01-08 11:00",  # 20 + 5 on 8 January
                    "2024-01-10 00:00",  # a return only: not a purchase day
                    "2024-01-03 00:00",
                    "2024-01-31 00:00",  # after the end: ignored
                    "2024-02-01 00:00",  # first purchase after the end: not in the summary
                ]
            ),
            "amount": [10.0, 20.0, 20.0, 5.0, -25.0, 7.0, 9.0, 3.0],
        }
    )
    summary = clv.summarise_transactions(transactions, "2024-01-15", unit="days")
    assert list(summary.index) == ["a", "b"]
    a, b = summary.loc["a"], summary.loc["b"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (1, 7.0, 14.0, 25.0)
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0, 0.0, 12.0, 0.0)
    assert a["first_purchase"] == pd.Timestamp("2024-01-01")
    weeks = clv.summarise_transactions(transactions, "2024-01-15", unit="weeks")
    assert weeks.loc["a", "recency"] == 1.0 and weeks.loc["a", "T"] == 2.0
    no_amount = clv.summarise_transactions(transactions, "2024-01-15", amount=None)
    # Without amounts a return cannot be told apart: 10 January is a purchase day.
    assert no_amount.loc["a", "frequency"] == 2
    assert no_amount.loc["a", "monetary_value"] == 0.0
    with pytest.raises(ValueError, match="unit"):
        clv.summarise_transactions(transactions, "2024-01-15", unit="months")


# --- BG/NBD --------------------------------------------------------------------------------


def test_bgnbd_fit_gives_the_published_cdnow_parameters(bgnbd):
    assert bgnbd.converged
    assert bgnbd.n_customers == 2357
    for name, published in PUBLISHED_BGNBD.items():
        assert bgnbd.params[name] == pytest.approx(published, rel=0.01), name
    assert bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_bgnbd_expectations_match_hardies_spreadsheet(bgnbd):
    assert bgnbd.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.001)
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    published = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(bgnbd.expected_purchases_new(times), published, atol=1e-3)


def test_bgnbd_in_days_only_rescales_alpha(cdnow, bgnbd):
    days = clv.summarise_transactions(cdnow, CALIBRATION_END, unit="days")
    fitted = clv.fit_bgnbd(days["frequency"], days["recency"], days["T"], unit="days")
    assert fitted.alpha == pytest.approx(7 * bgnbd.alpha, rel=1e-4)
    for name in ("r", "a", "b"):
        assert fitted.params[name] == pytest.approx(bgnbd.params[name], rel=1e-4)
    # Same predictions for the same calendar span.
    assert fitted.expected_purchases(273, 2, 213, 272) == pytest.approx(
        bgnbd.expected_purchases(39, 2, 213 / 7, 272 / 7), rel=1e-6
    )


def test_bgnbd_log_likelihood_is_the_sum_of_the_customers(calibration, bgnbd):
    per_customer = bgnbd.log_likelihood_per_customer(
        calibration["frequency"], calibration["recency"], calibration["T"]
    )
    assert per_customer.sum() == pytest.approx(bgnbd.log_likelihood)
    # Weighted rows give the same fit as the rows they stand for.
    grouped = calibration.groupby(["frequency", "recency", "T"]).size().reset_index()
    weighted = clv.fit_bgnbd(
        grouped["frequency"], grouped["recency"], grouped["T"], weights=grouped[0]
    )
    assert weighted.n_customers == 2357
    for name, value in bgnbd.params.items():
        assert weighted.params[name] == pytest.approx(value, rel=1e-4)


def test_p_alive_special_cases(calibration, bgnbd):
    """P(alive) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) (Fader, Hardie &
    Lee, "Computing P(alive) Using the BG/NBD Model"). Its indicator makes it exactly 1 at
    x = 0, whatever T: in the BG/NBD a customer can only drop out right after a repeat
    purchase, so someone who never came back cannot have dropped out (the lifetimes test
    suite asserts the same)."""
    assert bgnbd.p_alive(0, 0, 1) == 1.0
    assert np.all(bgnbd.p_alive(0, 0, np.array([0.5, 38.86, 500.0])) == 1.0)
    p = bgnbd.p_alive(calibration["frequency"], calibration["recency"], calibration["T"])
    assert np.all((p >= 0) & (p <= 1))
    repeat = calibration["frequency"].to_numpy() > 0
    assert np.all(p[~repeat] == 1.0)
    assert np.all(p[repeat] < 1.0)
    # Formula by hand for customer 1 (x=2, t_x=30.43, T=38.86).
    r, alpha, a, b = bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b
    by_hand = 1 / (1 + a / (b + 1) * ((alpha + 38.86) / (alpha + 30.43)) ** (r + 2))
    assert bgnbd.p_alive(2, 30.43, 38.86) == pytest.approx(by_hand, rel=1e-12)
    # A buyer who stops is less and less likely alive; one who bought lately more likely.
    ages = np.array([10.0, 20.0, 40.0, 80.0])
    assert np.all(np.diff(bgnbd.p_alive(3, 10.0, ages)) < 0)
    assert np.all(np.diff(bgnbd.p_alive(3, np.array([1.0, 5.0, 9.0]), 10.0)) > 0)
    # Even right after a purchase a customer may have dropped out (with probability p):
    # at t_x = T, P(alive) = 1 / (1 + a/(b+x-1)).
    assert bgnbd.p_alive(5, 10.0, 10.0) == pytest.approx(1 / (1 + a / (b + 4)), rel=1e-12)
    # No overflow for very frequent buyers gone quiet.
    with np.errstate(all="raise"):
        assert bgnbd.p_alive(1000, 10, 100) == 0.0


def test_expected_purchases_behave(bgnbd):
    horizons = np.array([0.0, 1.0, 10.0, 39.0, 100.0])
    conditional = bgnbd.expected_purchases(horizons, 4, 30.0, 38.86)
    assert conditional[0] == 0.0 and np.all(np.diff(conditional) > 0)
    # A customer without repeat purchases: P(alive) = 1 and eq. 10 depends on T only.
    assert bgnbd.expected_purchases(39, 0, 0, 38.86) == pytest.approx(
        (bgnbd.a + bgnbd.b - 1)
        / (bgnbd.a - 1)
        * (
            1
            - ((bgnbd.alpha + 38.86) / (bgnbd.alpha + 77.86)) ** bgnbd.r
            * _hyp2f1(bgnbd.r, bgnbd.b, bgnbd.a + bgnbd.b - 1, 39 / (bgnbd.alpha + 77.86))
        ),
        rel=1e-9,
    )
    # For a brand-new customer (x = t_x = T = 0) eq. 10 is eq. 9.
    assert bgnbd.expected_purchases(25.0, 0, 0, 0) == pytest.approx(
        bgnbd.expected_purchases_new(25.0), rel=1e-9
    )
    with pytest.raises(ValueError):
        bgnbd.expected_purchases(1.0, 2, 5.0, 3.0)  # recency after T


@pytest.mark.parametrize(
    ("params", "x", "age", "t", "reference"),
    [
        # E[Y(t) | x, t_x = T, T] / P(alive), computed with mpmath at 40 digits from eq. 10
        # as printed. Where scipy's hyp2f1 of the printed form gives inf/NaN or a wrong value.
        ((2.0, 10.0, 3.0, 20.0), 300, 0.0, 365.0, 160.87022743772368),
        ((2.0, 10.0, 3.0, 20.0), 1000, 30.0, 3650.0, 510.9375558857073),
        ((0.5, 100.0, 1.5, 5.0), 1000, 0.0, 100000.0, 1947.2797828594046),
        ((30.0, 1000.0, 0.3, 50.0), 0, 0.0, 3650.0, 89.18564321263678),
        ((0.243, 30.9, 0.793, 2.426), 1000, 365.0, 3650.0, 2988.7654224399535),
    ],
)
def test_conditional_expectation_is_accurate_in_hard_corners(params, x, age, t, reference):
    model = clv.BGNBD(*params, log_likelihood=0.0, n_customers=0, unit="days")
    value = model.expected_purchases(t, x, age, age) / model.p_alive(x, age, age)
    assert value == pytest.approx(reference, rel=1e-7)


def _hyp2f1(a, b, c, z):
    from scipy.special import hyp2f1

    return hyp2f1(a, b, c, z)


# --- Gamma-Gamma ---------------------------------------------------------------------------


def test_gamma_gamma_fit_gives_the_published_cdnow_parameters(gamma_gamma):
    assert gamma_gamma.converged
    assert gamma_gamma.n_customers == 946
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert gamma_gamma.params[name] == pytest.approx(published, rel=0.01), name


def test_gamma_gamma_expected_spend(gamma_gamma):
    p, q, v = gamma_gamma.p, gamma_gamma.q, gamma_gamma.v
    # lifetimes README: conditional expected average profit of customer 1 = 24.6586.
    assert gamma_gamma.expected_spend(2, 22.345) == pytest.approx(24.6586, rel=1e-3)
    # A weighted average of the population mean and the customer's own mean.
    weight = p * 3 / (p * 3 + q - 1)
    assert gamma_gamma.expected_spend(3, 50.0) == pytest.approx(
        (1 - weight) * gamma_gamma.mean_spend + weight * 50.0
    )
    # No repeat purchases: the population mean, whatever the monetary column holds.
    np.testing.assert_allclose(
        gamma_gamma.expected_spend([0, 0], [0.0, 99.0]), gamma_gamma.mean_spend
    )
    assert gamma_gamma.mean_spend == pytest.approx(p * v / (q - 1))


def test_gamma_gamma_leaves_out_non_positive_spends():
    fitted = clv.fit_gamma_gamma([0, 1, 2, 3, 2, 4, 1], [0.0, 10.0, -5.0, 12.0, 20.0, 8.0, 15.0])
    assert fitted.n_customers == 5
    with pytest.raises(ValueError):
        clv.fit_gamma_gamma([0, 0], [1.0, 2.0])


# --- CLV -----------------------------------------------------------------------------------


def test_clv_is_expected_purchases_times_expected_spend(calibration, bgnbd, gamma_gamma):
    args = (calibration["frequency"], calibration["recency"], calibration["T"])
    value = clv.customer_lifetime_value(
        bgnbd, gamma_gamma, *args, calibration["monetary_value"], days=365
    )
    purchases = bgnbd.expected_purchases(365 / 7, *args)
    spend = gamma_gamma.expected_spend(calibration["frequency"], calibration["monetary_value"])
    np.testing.assert_allclose(value, purchases * spend)

    discounted = clv.customer_lifetime_value(
        bgnbd,
        gamma_gamma,
        *args,
        calibration["monetary_value"],
        days=365,
        annual_discount_rate=0.10,
    )
    assert np.all(discounted < value) and np.all(discounted > value / 1.10)
    # One step at the horizon: the whole value discounted by a year.
    one_step = clv.customer_lifetime_value(
        bgnbd,
        gamma_gamma,
        *args,
        calibration["monetary_value"],
        days=365.25,
        annual_discount_rate=0.10,
        step_days=400,
    )
    plain = clv.customer_lifetime_value(
        bgnbd, gamma_gamma, *args, calibration["monetary_value"], days=365.25
    )
    np.testing.assert_allclose(one_step, plain / 1.10)

    table = clv.predict_customers(calibration, bgnbd, gamma_gamma, days=365)
    assert list(table.columns) == [
        "repeat_purchases",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "expected_value",
    ]
    np.testing.assert_allclose(table["expected_value"], value)
    assert table.index.equals(calibration.index)
    # The model's own repeat buyers: P(alive) is 1 exactly where there is no repeat day.
    np.testing.assert_array_equal(table["repeat_purchases"], calibration["frequency"])
    assert (table["p_alive"][table["repeat_purchases"] == 0] == 1).all()
    assert (table["p_alive"][table["repeat_purchases"] > 0] < 1).all()


# --- Calibration / holdout -----------------------------------------------------------------


def test_holdout_check_on_cdnow(cdnow, holdout, bgnbd):
    """Fit on weeks 1-39, compare with weeks 40-78 (the paper's design)."""
    assert holdout.model.params == pytest.approx(bgnbd.params)
    assert holdout.calibration_periods == 39 and holdout.holdout_periods == 39

    # Actual holdout repeat purchases, counted independently: purchase days after the
    # calibration end of the customers (all of them first bought in the calibration).
    days = cdnow.drop_duplicates(["customer_id", "date"])
    assert holdout.total_actual == int((days["date"] > CALIBRATION_END).sum()) == 1882
    assert holdout.customers["actual"].sum() == 1882
    assert holdout.customers["expected"].sum() == pytest.approx(holdout.total_expected)

    # The paper's tracking figure: cumulative repeat purchases, weeks 1-78.
    cumulative = holdout.cumulative
    assert len(cumulative) == 78
    assert cumulative["end"].iloc[-1] == pd.Timestamp(OBSERVATION_END)
    assert cumulative.loc[39, "actual"] == 2457  # = sum of calibration frequencies
    assert cumulative.loc[78, "actual"] == 2457 + 1882
    assert np.all(np.diff(cumulative["actual"]) >= 0)
    assert np.all(np.diff(cumulative["predicted"]) > 0)
    # Calibration weeks are fitted closely; the model stays within 5 % of the actual
    # cumulative count to the end of week 78 (4161 against 4339, -4 %).
    assert cumulative.loc[39, "predicted"] == pytest.approx(2457, rel=0.02)
    assert cumulative.loc[78, "predicted"] == pytest.approx(4339, rel=0.05)

    # Weeks 40-78 alone: the BG/NBD under-forecasts this sample's holdout (the published
    # conditional-expectation figure shows the same shortfall for customers with 1-2
    # calibration repeat purchases): 1653 expected against 1882 actual, -12 %.
    assert holdout.total_expected == pytest.approx(1653.4, abs=1.0)
    assert 0.85 * 1882 < holdout.total_expected < 1882
    assert holdout.correlation == pytest.approx(0.626, abs=0.005)
    assert list(holdout.by_frequency.index) == list(range(8))
    assert holdout.by_frequency["customers"].sum() == 2357
    assert holdout.by_frequency.loc[0, "customers"] == 1411


# --- Synthetic data from known parameters --------------------------------------------------

TRUE_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
TRUE_SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}


def test_fits_recover_known_parameters():
    rng = np.random.default_rng(2024)
    ages = rng.integers(26 * 7, 78 * 7, 50_000) / 7
    sample = clv.simulate_bgnbd(50_000, **TRUE_BGNBD, T=ages, seed=1)
    fitted = clv.fit_bgnbd(sample["frequency"], sample["recency"], sample["T"])
    assert fitted.r == pytest.approx(TRUE_BGNBD["r"], rel=0.05)
    assert fitted.alpha == pytest.approx(TRUE_BGNBD["alpha"], rel=0.05)
    assert fitted.a == pytest.approx(TRUE_BGNBD["a"], rel=0.12)
    assert fitted.b == pytest.approx(TRUE_BGNBD["b"], rel=0.12)

    spend = clv.simulate_gamma_gamma(sample["frequency"], **TRUE_SPEND, seed=2)
    spend_fit = clv.fit_gamma_gamma(sample["frequency"], spend)
    for name, value in TRUE_SPEND.items():
        assert spend_fit.params[name] == pytest.approx(value, rel=0.15), name


def test_simulated_purchases_match_the_expectation():
    """Eq. 9 against the simulator: mean repeat purchases by T of many new customers."""
    model = clv.BGNBD(**TRUE_BGNBD, log_likelihood=0.0, n_customers=0)
    sample = clv.simulate_bgnbd(200_000, **TRUE_BGNBD, T=39.0, seed=3)
    assert sample["frequency"].mean() == pytest.approx(
        float(model.expected_purchases_new(39.0)), rel=0.03
    )


def test_holdout_check_on_simulated_transactions():
    transactions = clv.simulate_transactions(
        30_000,
        **TRUE_BGNBD,
        start="1997-01-01",
        end=OBSERVATION_END,
        spend=tuple(TRUE_SPEND.values()),
        seed=7,
    )
    check = clv.calibration_holdout_check(transactions, CALIBRATION_END, OBSERVATION_END)
    assert check.total_expected == pytest.approx(check.total_actual, rel=0.05)
    assert check.cumulative["predicted"].iloc[-1] == pytest.approx(
        check.cumulative["actual"].iloc[-1], rel=0.03
    )
    assert check.correlation > 0.6
    for name, value in TRUE_BGNBD.items():
        assert check.model.params[name] == pytest.approx(value, rel=0.15), name
    summary = clv.summarise_transactions(transactions, CALIBRATION_END)
    spend_fit = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    for name, value in TRUE_SPEND.items():
        assert spend_fit.params[name] == pytest.approx(value, rel=0.15), name


def test_fitting_100000_customers_is_fast():
    ages = np.random.default_rng(5).integers(1, 365, 100_000) / 7
    sample = clv.simulate_bgnbd(100_000, **TRUE_BGNBD, T=ages, seed=6)
    spend = clv.simulate_gamma_gamma(sample["frequency"], **TRUE_SPEND, seed=7)
    started = time.perf_counter()
    fitted = clv.fit_bgnbd(sample["frequency"], sample["recency"], sample["T"])
    spend_fit = clv.fit_gamma_gamma(sample["frequency"], spend)
    elapsed = time.perf_counter() - started
    assert fitted.converged and spend_fit.converged
    # Typically about 0.5 s for both on one core; the bound leaves room for busy CI machines.
    assert elapsed < 5.0


def test_fitting_dedupes_customers_without_changing_the_fit(calibration, bgnbd):
    """A million customers are fitted as their distinct (x, t_x, T) with weights: the same
    customers listed twice over give the same parameters and twice the log-likelihood."""
    twice = pd.concat([calibration, calibration])
    fitted = clv.fit_bgnbd(twice["frequency"], twice["recency"], twice["T"])
    for name, value in bgnbd.params.items():
        assert fitted.params[name] == pytest.approx(value, rel=1e-6), name
    assert fitted.log_likelihood == pytest.approx(2 * bgnbd.log_likelihood, rel=1e-9)
    assert fitted.n_customers == 2 * bgnbd.n_customers


@pytest.mark.parametrize(("stop", "nelder_mead"), [(1.0 + 1e-8, False), (3.0, True)])
def test_a_failed_line_search_at_a_flat_point_is_the_optimum(monkeypatch, stop, nelder_mead):
    """L-BFGS-B that stops for want of a lower value (as on a million customers whose
    likelihood is flat to its last digits) is taken at its word where the gradient is flat;
    elsewhere Nelder-Mead takes over (each of its steps a pass over every customer)."""
    methods = []
    real_minimize = clv.minimize

    def minimize(objective, start, method, **options):
        methods.append(method)
        if len(methods) == 1:  # the first L-BFGS-B gives up at ``stop``
            return OptimizeResult(x=np.full(2, stop), success=False, message="ABNORMAL")
        return real_minimize(objective, start, method=method, **options)

    def objective(z, with_gradient=True):
        return float(np.sum((z - 1.0) ** 2)), 2.0 * (z - 1.0) if with_gradient else None

    monkeypatch.setattr(clv, "minimize", minimize)
    x, converged = clv._minimise(objective, np.zeros(2))
    assert converged
    assert ("Nelder-Mead" in methods) is nelder_mead
    assert x == pytest.approx([1.0, 1.0], abs=1e-6)


def test_a_history_where_nobody_drops_out_is_no_fit():
    """Purchases spread at random over two years, nobody lapsing: the drop-out parameters
    run off to their bound, and the fit says it did not settle (the service then refuses
    to activate it, with that reason) instead of passing off meaningless values."""
    rng = np.random.default_rng(4)
    n = 3_000
    log = pd.DataFrame(
        {
            "customer_id": rng.integers(0, n, 30_000),
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 730, 30_000), "D"),
            "amount": 20.0,
        }
    )
    summary = clv.summarise_transactions(log, pd.Timestamp("2026-01-01"), unit="weeks")

    fitted = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])

    assert not fitted.converged
    assert min(fitted.a, fitted.b) < 1e-6 or max(fitted.a, fitted.b) > 1e6
