"""Fit, store and activate lifetime-value models (purchases.clv does the numbers).

A run reads every purchase (customer, day, amount), fits BG/NBD and Gamma-Gamma on the
history up to its observation end, and, when a calibration end is given, first checks a
model fitted up to that day against the purchases after it. Activating a run writes each
customer's P(alive), expected purchases and expected value of the next ``horizon_days``.
"""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from purchases import clv
from purchases.models import ClvRun, CustomerValue, Purchase

logger = logging.getLogger(__name__)
CHECK_POINTS = 60  # points of the cumulative chart kept on the run


class ClvError(Exception):
    """A problem a marketer can act on (no purchases, no repeat buyers)."""


def clv_run_start(*, calibration_end: date | None = None, horizon_days: int = 365, user=None):
    return ClvRun.objects.create(
        calibration_end=calibration_end,
        horizon_days=horizon_days,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        step="Waiting",
    )


def purchases_frame() -> pd.DataFrame:
    """Every purchase as (customer_id = the customer's pk, date, amount)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT customer_id, date, amount FROM {Purchase._meta.db_table}")
        rows = cursor.fetchall()
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def clv_run_execute(*, run_id: int) -> ClvRun:
    """Fit the run's models and activate it; on any error mark it failed (nothing changes)."""
    run = ClvRun.objects.get(id=run_id)
    ClvRun.objects.filter(id=run_id).update(status=ClvRun.Status.RUNNING, step="Reading")
    try:
        frame = purchases_frame()
        if frame.empty:
            raise ClvError("There are no purchases yet: import an order log first.")
        # The day after the last purchase, as for RFM: nobody's history has zero length.
        observation_end = (frame["date"].max() + pd.Timedelta(days=1)).date()
        holdout = (
            _holdout(frame, run.calibration_end, observation_end) if run.calibration_end else {}
        )
        ClvRun.objects.filter(id=run_id).update(step="Fitting")
        summary, bgnbd, spend = _fit(frame, observation_end)
        with transaction.atomic():
            ClvRun.objects.filter(id=run_id).update(
                status=ClvRun.Status.SUCCEEDED,
                step="Finished",
                observation_end=observation_end,
                parameters=_parameters(bgnbd, spend),
                log_likelihood=round(bgnbd.log_likelihood, 4),
                customers=len(summary),
                repeat_customers=int((summary["frequency"] > 0).sum()),
                holdout=holdout,
                finished_at=timezone.now(),
            )
            clv_run_activate(run_id=run_id, summary=summary, models=(bgnbd, spend))
    except Exception as problem:
        logger.exception("CLV run %s failed", run_id)
        message = (
            str(problem)
            if isinstance(problem, ClvError)
            else (
                f"The fit stopped because of an unexpected error ({type(problem).__name__}: "
                f"{problem})."
            )
        )
        ClvRun.objects.filter(id=run_id).update(
            status=ClvRun.Status.FAILED, step="Failed", error=message[:2000],
            finished_at=timezone.now(),
        )  # fmt: skip
    return ClvRun.objects.get(id=run_id)


def _fit(frame: pd.DataFrame, end: date):
    summary = clv.summarise_transactions(frame, end, unit="weeks")
    bgnbd = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"], unit="weeks")
    repeat = summary[summary["frequency"] > 0]
    if len(repeat) < 10:
        raise ClvError(
            f"Only {len(repeat)} customers bought more than once: the spend model needs at "
            "least 10 repeat customers."
        )
    spend = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    return summary, bgnbd, spend


def _parameters(bgnbd: clv.BGNBD, spend: clv.GammaGamma) -> dict[str, float]:
    values = {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b}
    values.update({"p": spend.p, "q": spend.q, "v": spend.v})
    return {name: round(float(value), 5) for name, value in values.items()}


def _holdout(frame: pd.DataFrame, calibration_end: date, observation_end: date) -> dict:
    if calibration_end >= observation_end:
        raise ClvError(
            f"The calibration end ({calibration_end}) must be before the last purchase "
            f"({observation_end})."
        )
    check = clv.calibration_holdout_check(frame, calibration_end, observation_end, unit="weeks")
    cumulative = check.cumulative
    step = max(1, len(cumulative) // CHECK_POINTS)
    points = cumulative.iloc[::step]
    return {
        "calibration_end": calibration_end.isoformat(),
        "parameters": {
            name: round(float(getattr(check.model, name)), 5) for name in ("r", "alpha", "a", "b")
        },
        "total_expected": round(check.total_expected, 2),
        "total_actual": check.total_actual,
        "correlation": round(check.correlation, 4),
        "weeks": [round(float(w), 2) for w in points.index],
        "cumulative_actual": [round(float(v), 2) for v in points["actual"]],
        "cumulative_predicted": [round(float(v), 2) for v in points["predicted"]],
        "calibration_weeks": round(float(check.calibration_periods), 2),
    }


def clv_run_activate(*, run_id: int, summary=None, models=None) -> None:
    """Make a succeeded run the active one and write every customer's expected value."""
    run = ClvRun.objects.get(id=run_id)
    if summary is None or models is None:
        frame = purchases_frame()
        summary, *models = _fit(frame, run.observation_end)
    bgnbd, spend = models
    values = clv.predict_customers(summary, bgnbd, spend, days=run.horizon_days)
    if not bgnbd.converged or values[["p_alive", "expected_purchases"]].isna().to_numpy().any():
        raise ClvError(
            "The repeat-purchase model did not settle on this history (its drop-out "
            f"parameters ran off to a={bgnbd.a:.3g}, b={bgnbd.b:.3g}), so its values would "
            "mean nothing; the previous CLV run stays active."
        )
    with transaction.atomic():
        ClvRun.objects.filter(is_active=True).exclude(id=run_id).update(is_active=False)
        ClvRun.objects.filter(id=run_id).update(is_active=True)
        CustomerValue.objects.all().delete()
        CustomerValue.objects.bulk_create(
            (
                CustomerValue(
                    customer_id=int(customer),
                    run_id=run_id,
                    p_alive=float(row.p_alive),
                    expected_purchases=float(row.expected_purchases),
                    expected_value=float(row.expected_value),
                )
                for customer, row in values.iterrows()
            ),
            batch_size=5_000,
        )
