"""Fit, store and activate lifetime-value models (purchases.clv does the numbers).

A run has the database count the purchases per customer and per day (``purchase_counts``:
one row per customer leaves it, never one per purchase), fits BG/NBD and Gamma-Gamma on the
history up to its observation end, and, when a calibration end is given, first checks a
model fitted up to that day against the purchases after it. Activating a run writes each
customer's P(alive), expected purchases and expected value of the next ``horizon_days``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date
from functools import partial

import numpy as np
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


# Sorting ten million purchases by customer and day once, in memory, then reading them in
# that order: an index scan visited the rows in random order (44 s against 18 s).
CLV_PLANNER_SETTINGS = ("work_mem = '512MB'", "enable_indexscan = off", "enable_bitmapscan = off")
COPY_BLOCK_BYTES = 16 * 2**20
_NO_CALIBRATION = date(9999, 12, 31)


@dataclass(frozen=True)
class PurchaseCounts:
    """What the CLV models read, counted by the database (returns left out; several
    purchases of a customer on one day are one purchase day, worth the day's total).

    ``customers`` (index: the customer's pk): ``first_day``, ``last_day``,
    ``repeat_days`` (purchase days after the first), ``repeat_value`` (their total),
    and for a calibration end: ``cal_repeat_days``, ``cal_last_day`` (up to it) and
    ``holdout_days`` (after it). ``repeat_by_day`` (index: the day): the repeat purchase
    days on that day of every customer (``all``) and of those whose first purchase is in
    the calibration period (``calibration``)."""

    customers: pd.DataFrame
    repeat_by_day: pd.DataFrame
    calibration_end: date | None = None

    @property
    def observation_end(self) -> date:
        """The day after the last purchase, as for RFM: nobody's history has zero length."""
        return (self.customers["last_day"].max() + pd.Timedelta(days=1)).date()

    def summary(self, *, end: date, unit: str = "weeks") -> pd.DataFrame:
        """Every customer's BG/NBD summary (purchases.clv) as of ``end``."""
        c = self.customers
        return clv.summary_from_aggregates(
            first_purchase=c["first_day"],
            last_purchase=c["last_day"],
            repeat_days=c["repeat_days"],
            repeat_value=c["repeat_value"],
            end=end,
            unit_days=clv.unit_days(unit),
        )

    def calibration(self, unit: str = "weeks"):
        """What the check on the later period reads (``clv.holdout_check``): the summary
        as of the calibration end of the customers who had bought by then (without spend:
        the check needs none), their purchase days after it, and their repeat purchase
        days per day."""
        calibration_end = self.calibration_end
        if calibration_end is None:
            raise ValueError("these counts were made without a calibration end")
        c = self.customers[self.customers["first_day"] <= pd.Timestamp(calibration_end)]
        summary = clv.summary_from_aggregates(
            first_purchase=c["first_day"],
            last_purchase=c["cal_last_day"],
            repeat_days=c["cal_repeat_days"],
            repeat_value=pd.Series(0.0, index=c.index),
            end=calibration_end,
            unit_days=clv.unit_days(unit),
        )
        by_day = self.repeat_by_day["calibration"]
        return summary, c["holdout_days"], by_day[by_day > 0]


def purchase_counts(*, before: date | None = None, calibration_end: date | None = None):
    """Count the purchases (those before the day ``before``, when given) per customer and
    per day, in one pass: a million rows for a million customers leave the database, not
    ten million purchase days."""
    sql = _counts_sql(with_before=before is not None)
    params = {"calibration": calibration_end or _NO_CALIBRATION, "before": before}
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for setting in CLV_PLANNER_SETTINGS:
                cursor.execute(f"SET LOCAL {setting}")
            frames = list(_copy_frames(cursor, sql, params))
        else:
            cursor.execute(sql, params)
            frames = [pd.DataFrame(cursor.fetchall(), columns=list(_COUNT_COLUMNS))]
    rows = pd.concat(frames, ignore_index=True) if frames else _parse(b"")
    for name in ("date", "first_day", "last_day", "cal_last_day"):
        rows[name] = pd.to_datetime(rows[name], format="%Y-%m-%d")
    by_customer = rows["customer_id"].notna()
    customers = rows[by_customer].astype(_CUSTOMER_TYPES).set_index("customer_id").sort_index()
    customers = customers.drop(columns=["date", "cohort"])
    per_day = rows[~by_customer].astype({"repeat_days": "int64"})
    every = per_day.groupby("date")["repeat_days"].sum()
    cohort = per_day[per_day["cohort"] == 1].groupby("date")["repeat_days"].sum()
    repeat_by_day = pd.DataFrame(
        {"all": every, "calibration": cohort.reindex(every.index, fill_value=0)}
    )
    return PurchaseCounts(customers, repeat_by_day, calibration_end)


_COUNT_COLUMNS = (
    "customer_id",
    "date",
    "cohort",
    "repeat_days",
    "repeat_value",
    "cal_repeat_days",
    "holdout_days",
    "first_day",
    "last_day",
    "cal_last_day",
)
_CUSTOMER_TYPES = {
    "customer_id": "int64",
    "repeat_days": "int64",
    "repeat_value": "float64",
    "cal_repeat_days": "int64",
    "holdout_days": "int64",
}


def _counts_sql(*, with_before: bool) -> str:
    """Each customer's purchases in day order (one sort), marked with the customer's first
    day and whether the row opens a new purchase day; then grouped twice, by customer and
    by (day, first purchase in the calibration period). PostgreSQL does both groupings in
    one pass over the sorted rows (GROUPING SETS); SQLite, which has none, sorts twice."""
    before = "AND date < %(before)s" if with_before else ""
    marked = f"""
        SELECT customer_id, date, amount,
               MIN(date) OVER w AS first_day,
               CASE WHEN date = LAG(date) OVER w THEN 0 ELSE 1 END AS new_day
        FROM {Purchase._meta.db_table} WHERE amount >= 0 {before}
        WINDOW w AS (PARTITION BY customer_id ORDER BY date)"""
    counts = """
        SUM(CASE WHEN date > first_day THEN new_day ELSE 0 END),
        SUM(CASE WHEN date > first_day THEN amount ELSE 0 END),
        SUM(CASE WHEN date > first_day AND date <= %(calibration)s THEN new_day ELSE 0 END),
        SUM(CASE WHEN date > %(calibration)s THEN new_day ELSE 0 END),
        CAST(MIN(first_day) AS TEXT), CAST(MAX(date) AS TEXT),
        CAST(MAX(CASE WHEN date <= %(calibration)s THEN date END) AS TEXT)"""
    cohort = "CASE WHEN first_day <= %(calibration)s THEN 1 ELSE 0 END"
    if connection.vendor == "postgresql":
        return f"""SELECT customer_id, CAST(date AS TEXT), {cohort}, {counts}
            FROM ({marked}) marked GROUP BY GROUPING SETS ((customer_id), (date, {cohort}))"""
    return f"""SELECT customer_id, NULL, NULL, {counts} FROM ({marked}) marked
        GROUP BY customer_id
        UNION ALL
        SELECT NULL, CAST(date AS TEXT), {cohort}, {counts} FROM ({marked}) marked
        GROUP BY date, {cohort}"""


def _copy_frames(cursor, sql: str, params: list):
    """The query's rows as DataFrames of about COPY_BLOCK_BYTES each (COPY ... CSV, parsed
    by pandas' C parser: no row goes through a Python tuple)."""
    blocks, size = [], 0
    with cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV", params) as copy:
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
    if not text:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _COUNT_COLUMNS})
    return pd.read_csv(
        io.BytesIO(text),
        header=None,
        names=list(_COUNT_COLUMNS),
        dtype={"date": str, "first_day": str, "last_day": str, "cal_last_day": str},
    )


def clv_run_execute(*, run_id: int) -> ClvRun:
    """Fit the run's models and activate it; on any error mark it failed (nothing changes)."""
    run = ClvRun.objects.get(id=run_id)
    ClvRun.objects.filter(id=run_id).update(status=ClvRun.Status.RUNNING, heartbeat_at=Now())
    heartbeat = ClvHeartbeat(run_id)  # a worker that dies stops beating: purchases.recovery
    heartbeat.start()
    _step(run_id, "Counting the purchases", 5)
    try:
        counts = purchase_counts(calibration_end=run.calibration_end)
        if counts.customers.empty:
            raise ClvError("There are no purchases yet: import an order log first.")
        observation_end = counts.observation_end
        if run.calibration_end:
            _step(run_id, "Checking a model fitted up to the calibration end", 20)
        holdout = (
            _holdout(counts, run.calibration_end, observation_end) if run.calibration_end else {}
        )
        _step(run_id, "Fitting BG/NBD and Gamma-Gamma", 50)
        summary, bgnbd, spend = _fit(counts.summary(end=observation_end))
        _step(run_id, "Comparing the fit with the purchases", 75)
        tracking = _points(
            clv.cumulative_tracking_from_counts(
                bgnbd, summary["first_purchase"], counts.repeat_by_day["all"], observation_end
            )
        )
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


def _fit(summary: pd.DataFrame):
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


def _holdout(counts: PurchaseCounts, calibration_end: date, observation_end: date) -> dict:
    if calibration_end >= observation_end:
        raise ClvError(
            f"The calibration end ({calibration_end}) must be before the last purchase "
            f"({observation_end})."
        )
    summary, actual, repeat_by_day = counts.calibration()
    check = clv.holdout_check(summary, actual, repeat_by_day, calibration_end, observation_end)
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
        counts = purchase_counts(before=run.observation_end)
        if counts.customers.empty:
            raise ClvError("There are no purchases before this run's observation end.")
        summary = counts.summary(end=run.observation_end, unit=run.unit)
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
        customer_values_write(run_id=run_id, values=values)


# Binary COPY of CustomerValue rows: the number of fields, then each field's length and
# value, in network byte order (PostgreSQL's COPY BINARY format).
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
# Each column with its binary type (bigint, integer, double precision).
_VALUE_TYPES = {
    "customer_id": ">i8",
    "run_id": ">i8",
    "repeat_purchases": ">i4",
    "p_alive": ">f8",
    "expected_purchases": ">f8",
    "expected_value": ">f8",
}
_VALUE_COLUMNS = tuple(_VALUE_TYPES)
_VALUE_ROW = np.dtype(
    [("fields", ">i2")]
    + [
        field
        for name, kind in _VALUE_TYPES.items()
        for field in ((f"{name}_len", ">i4"), (name, kind))
    ]
)


def customer_values_write(*, run_id: int, values: pd.DataFrame) -> None:
    """Replace every customer's stored value by ``values`` (index: the customer's pk),
    inside the caller's transaction: binary COPY on PostgreSQL (a million rows in seconds,
    where the ORM took minutes), bulk_create elsewhere."""
    table = CustomerValue._meta.db_table
    if connection.vendor != "postgresql":
        CustomerValue.objects.all().delete()
        _values_create(run_id, values)
        return
    with connection.cursor() as cursor:
        # TRUNCATE, as for the RFM table: a million deleted rows would stay behind as dead
        # rows until a vacuum (readers wait for the commit, a few seconds). The table has
        # no key checks that could be pending (PostgreSQL refuses TRUNCATE then).
        cursor.execute(f"TRUNCATE {table}")
        rows = np.zeros(len(values), dtype=_VALUE_ROW)
        rows["fields"] = len(_VALUE_COLUMNS)
        for name, kind in _VALUE_TYPES.items():
            rows[f"{name}_len"] = np.dtype(kind).itemsize
        rows["customer_id"] = values.index.to_numpy(dtype="int64")
        rows["run_id"] = run_id
        rows["repeat_purchases"] = values["repeat_purchases"].to_numpy(dtype="int64")
        for name in _VALUE_COLUMNS[3:]:
            rows[name] = values[name].to_numpy(dtype=float)
        columns = ", ".join(_VALUE_COLUMNS)
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(_COPY_HEADER + rows.tobytes() + _COPY_TRAILER)


def _values_create(run_id: int, values: pd.DataFrame) -> None:
    # Plain columns zipped, not DataFrame rows.
    columns = zip(
        values.index.to_numpy(dtype="int64").tolist(),
        values["repeat_purchases"].to_numpy(dtype="int64").tolist(),
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
                repeat_purchases=repeat,
                p_alive=alive,
                expected_purchases=purchases,
                expected_value=value,
            )
            for customer, repeat, alive, purchases, value in columns
        ),
        batch_size=5_000,
    )


def _models_from(run: ClvRun) -> tuple[clv.BGNBD, clv.GammaGamma]:
    p = run.parameters
    bgnbd = clv.BGNBD(
        p["r"], p["alpha"], p["a"], p["b"], run.log_likelihood or 0.0, run.customers, run.unit
    )
    return bgnbd, clv.GammaGamma(p["p"], p["q"], p["v"], 0.0, run.repeat_customers)
