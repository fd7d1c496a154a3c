"""Fit, store and activate lifetime-value models (purchases.clv does the numbers).

A run reads every purchase (customer, day, amount), fits BG/NBD and Gamma-Gamma on the
history up to its observation end, and, when a calibration end is given, first checks a
model fitted up to that day against the purchases after it. Activating a run writes each
customer's P(alive), expected purchases and expected value of the next ``horizon_days``.
"""

from __future__ import annotations

import io
import logging
from datetime import date
from functools import partial

import pandas as pd
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from purchases import clv
from purchases.models import ClvRun, CustomerValue, Purchase
from purchases.recovery import ClvHeartbeat

logger = logging.getLogger(__name__)
CHECK_POINTS = 60  # points of the cumulative chart kept on the run


class ClvError(Exception):
    """A problem a marketer can act on (no purchases, no repeat buyers)."""


def clv_run_start(
    *,
    calibration_end: date | None = None,
    horizon_days: int = 365,
    user=None,
    enqueue: bool = True,
) -> ClvRun:
    """Record a CLV fit and queue it for a worker (``enqueue=False``: the caller runs it)."""
    run = ClvRun.objects.create(
        calibration_end=calibration_end,
        horizon_days=horizon_days,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        step="Waiting for a worker" if enqueue else "Waiting",
    )
    if enqueue:
        transaction.on_commit(partial(clv_run_enqueue, run_id=run.id))
    return run


def clv_run_enqueue(*, run_id: int) -> None:
    from purchases.tasks import clv_fit_task

    try:
        clv_fit_task.delay(run_id)
    except Exception as problem:  # kombu raises many kinds; all mean "not queued"
        logger.warning("could not queue CLV run %s: %s", run_id, problem)
        ClvRun.objects.filter(id=run_id, status=ClvRun.Status.PENDING).update(
            status=ClvRun.Status.FAILED,
            step="Failed",
            error="The queue is unavailable, so the fit was not started. Try again in a few "
            "minutes; the active CLV model stays.",
            finished_at=timezone.now(),
        )


def clv_run_claim(*, run_id: int) -> bool:
    """Pending -> running in one UPDATE, so a task delivered twice fits once."""
    return bool(
        ClvRun.objects.filter(id=run_id, status=ClvRun.Status.PENDING).update(
            status=ClvRun.Status.RUNNING, step="Starting", progress=1, heartbeat_at=Now()
        )
    )


def _step(run_id: int, step: str, progress: int) -> None:
    ClvRun.objects.filter(id=run_id).update(step=step, progress=progress)


def purchases_frame() -> pd.DataFrame:
    """Every customer's purchase days as (customer_id = the customer's pk, date, amount =
    the day's total), returns left out: what the CLV models read.

    The database groups the days (ten million purchases are a few million days); on
    PostgreSQL they stream out with COPY ... CSV and pandas' C parser reads them in blocks,
    so no row goes through the ORM or a Python tuple."""
    sql = (
        f"SELECT customer_id, date, SUM(amount) FROM {Purchase._meta.db_table} "
        "WHERE amount >= 0 GROUP BY customer_id, date"
    )
    if connection.vendor == "postgresql":
        frames = list(_copy_frames(sql))
        frame = pd.concat(frames, ignore_index=True) if frames else _parse(b"")
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
        frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
        frame = frame.astype({"customer_id": "int64", "amount": "float64"})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d")
    return frame


FRAME_COLUMNS = ("customer_id", "date", "amount")
COPY_BLOCK_BYTES = 16 * 2**20


def _copy_frames(sql: str):
    blocks, size = [], 0
    with connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV") as copy:
        for block in copy:
            blocks.append(bytes(block))
            size += len(block)
            if size >= COPY_BLOCK_BYTES:
                text = b"".join(blocks)
                cut = text.rfind(b"\n") + 1
                yield _parse(text[:cut])
                blocks, size = [text[cut:]], len(text) - cut
    if size:
        yield _parse(b"".join(blocks))


def _parse(text: bytes) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(text),
        header=None,
        names=list(FRAME_COLUMNS),
        dtype={"customer_id": "int64", "date": str, "amount": "float64"},
    )


def clv_run_execute(*, run_id: int) -> ClvRun:
    """Fit the run's models and activate it; on any error mark it failed (nothing changes)."""
    run = ClvRun.objects.get(id=run_id)
    ClvRun.objects.filter(id=run_id).update(status=ClvRun.Status.RUNNING, heartbeat_at=Now())
    heartbeat = ClvHeartbeat(run_id)  # a worker that dies stops beating: purchases.recovery
    heartbeat.start()
    _step(run_id, "Reading the purchases", 5)
    try:
        frame = purchases_frame()
        if frame.empty:
            raise ClvError("There are no purchases yet: import an order log first.")
        # The day after the last purchase, as for RFM: nobody's history has zero length.
        observation_end = (frame["date"].max() + pd.Timedelta(days=1)).date()
        if run.calibration_end:
            _step(run_id, "Checking a model fitted up to the calibration end", 20)
        holdout = (
            _holdout(frame, run.calibration_end, observation_end) if run.calibration_end else {}
        )
        _step(run_id, "Fitting BG/NBD and Gamma-Gamma", 50)
        summary, bgnbd, spend = _fit(frame, observation_end)
        _step(run_id, "Comparing the fit with the purchases", 75)
        tracking = _points(clv.cumulative_tracking(frame, bgnbd, observation_end))
        _step(run_id, "Writing every customer's expected value", 85)
        with transaction.atomic():
            ClvRun.objects.filter(id=run_id).update(
                status=ClvRun.Status.SUCCEEDED,
                step="Finished",
                progress=100,
                tracking=tracking,
                observation_end=observation_end,
                parameters=_parameters(bgnbd, spend),
                log_likelihood=round(bgnbd.log_likelihood, 4),
                customers=len(summary),
                repeat_customers=int((summary["frequency"] > 0).sum()),
                holdout=holdout,
                finished_at=timezone.now(),
            )
            clv_run_activate(
                run_id=run_id, summary=summary, models=(bgnbd, spend), user=run.created_by
            )
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
            status=ClvRun.Status.FAILED,
            step="Failed",
            error=message[:2000],
            finished_at=timezone.now(),
        )
    finally:
        heartbeat.stop()
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
    return {
        "calibration_end": calibration_end.isoformat(),
        "parameters": {
            name: round(float(getattr(check.model, name)), 5) for name in ("r", "alpha", "a", "b")
        },
        "total_expected": round(check.total_expected, 2),
        "total_actual": check.total_actual,
        "correlation": round(check.correlation, 4),
        **_points(check.cumulative),
        "calibration_weeks": round(float(check.calibration_periods), 2),
    }


def _points(cumulative: pd.DataFrame) -> dict:
    """At most CHECK_POINTS points of a cumulative tracking table, the last one included."""
    step = max(1, len(cumulative) // CHECK_POINTS)
    points = cumulative.iloc[::step]
    if len(cumulative) and points.index[-1] != cumulative.index[-1]:
        points = pd.concat([points, cumulative.iloc[[-1]]])
    return {
        "weeks": [round(float(w), 2) for w in points.index],
        "cumulative_actual": [round(float(v), 2) for v in points["actual"]],
        "cumulative_predicted": [round(float(v), 2) for v in points["predicted"]],
    }


def clv_run_activate(*, run_id: int, summary=None, models=None, user=None) -> None:
    """Make a succeeded run the active one and write every customer's expected value.

    An older run is activated with its own parameters (nothing is fitted again), on the
    history up to its own observation end."""
    run = ClvRun.objects.get(id=run_id)
    if summary is None or models is None:
        if run.status != ClvRun.Status.SUCCEEDED:
            raise ClvError(f"CLV run {run_id} did not succeed, so it cannot be made active.")
        frame = purchases_frame()
        end = pd.Timestamp(run.observation_end)
        summary = clv.summarise_transactions(frame[frame["date"] < end], end, unit="weeks")
        models = _models_from(run)
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
        ClvRun.objects.filter(id=run_id).update(
            is_active=True,
            activated_at=timezone.now(),
            activated_by=user if getattr(user, "is_authenticated", False) else None,
        )
        CustomerValue.objects.all().delete()
        # Plain columns zipped, not DataFrame rows: a million customers' values.
        columns = zip(
            values.index.to_numpy(dtype="int64").tolist(),
            values["p_alive"].to_numpy(dtype=float).tolist(),
            values["expected_purchases"].to_numpy(dtype=float).tolist(),
            values["expected_value"].to_numpy(dtype=float).tolist(),
            strict=True,
        )
        CustomerValue.objects.bulk_create(
            (
                CustomerValue(
                    customer_id=customer,
                    run_id=run_id,
                    p_alive=alive,
                    expected_purchases=purchases,
                    expected_value=value,
                )
                for customer, alive, purchases, value in columns
            ),
            batch_size=5_000,
        )


def _models_from(run: ClvRun) -> tuple[clv.BGNBD, clv.GammaGamma]:
    p = run.parameters
    bgnbd = clv.BGNBD(
        p["r"], p["alpha"], p["a"], p["b"], run.log_likelihood or 0.0, run.customers, run.unit
    )
    return bgnbd, clv.GammaGamma(p["p"], p["q"], p["v"], 0.0, run.repeat_customers)
