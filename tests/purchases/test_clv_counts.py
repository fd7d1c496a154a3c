"""The CLV run counts purchases in the database (purchases.clv_services.purchase_counts):
its summaries, later-period check and tracking equal purchases.clv's pandas computation on
the same order log. Run on SQLite and, with DATABASE_URL set, on PostgreSQL (one SQL
text each: GROUPING SETS there)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from customers.models import Customer
from purchases import clv
from purchases.clv_services import purchase_counts
from purchases.models import Purchase, PurchaseFile

pytestmark = pytest.mark.django_db

CALIBRATION_END = date(2024, 3, 31)
# customer, day, amount: a hand-made log with every case the counts must get right.
LOG = [
    # "regular": two purchases on her first day (one purchase day worth 30), a return on
    # a purchase day (left out, the day keeps its 20 + 5), a return-only day (no purchase
    # day), a zero-amount purchase (a purchase day), days on both sides of the calibration
    # end, one of them on the end itself (calibration).
    ("regular", "2024-01-02", 10.0),
    ("regular", "2024-01-02", 20.0),
    ("regular", "2024-01-20", 20.0),
    ("regular", "2024-01-20", 5.0),
    ("regular", "2024-01-20", -5.0),
    ("regular", "2024-02-11", -12.0),
    ("regular", "2024-03-01", 0.0),
    ("regular", "2024-03-31", 14.5),
    ("regular", "2024-05-05", 8.25),
    ("regular", "2024-05-05", 1.75),
    ("regular", "2024-06-30", 40.0),
    # one-time buyer, in the calibration period.
    ("once", "2024-02-14", 55.0),
    # repeat buyer who starts on the calibration end and buys only after it.
    ("on the end", "2024-03-31", 12.0),
    ("on the end", "2024-04-02", 13.0),
    ("on the end", "2024-04-02", 13.0),
    # first purchase after the calibration end: in the summary, not in the check.
    ("late", "2024-04-10", 30.0),
    ("late", "2024-06-01", 31.0),
    ("late", "2024-07-01", 32.0),
    # returns only: never a customer of the models.
    ("returns only", "2024-02-01", -9.0),
    # a buyer with repeat purchases only in the calibration period.
    ("lapsed", "2024-01-05", 100.0),
    ("lapsed", "2024-01-06", 120.0),
    ("lapsed", "2024-02-06", 80.0),
]


@pytest.fixture
def log() -> pd.DataFrame:
    """The LOG stored as purchases; returned as the pandas order log (customer pk, date,
    amount) that purchases.clv reads."""
    source = PurchaseFile.objects.create(file_name="hand-made.txt", sha256="0" * 64)
    names = dict.fromkeys(name for name, _, _ in LOG)
    pks = {name: Customer.objects.create(customer_id=name).pk for name in names}
    Purchase.objects.bulk_create(
        Purchase(customer_id=pks[name], date=date.fromisoformat(day), amount=amount, source=source)
        for name, day, amount in LOG
    )
    return pd.DataFrame(
        {
            "customer_id": [pks[name] for name, _, _ in LOG],
            "date": pd.to_datetime([day for _, day, _ in LOG]),
            "amount": [amount for _, _, amount in LOG],
        }
    )


def test_the_database_summary_equals_the_pandas_summary(log):
    counts = purchase_counts()
    end = counts.observation_end
    assert end == date(2024, 7, 2)  # the day after the last purchase

    ours = counts.summary(end=end)
    theirs = clv.summarise_transactions(log, end, unit="weeks")
    assert list(ours.index) == list(theirs.index)
    assert len(ours) == 5  # "returns only" is nobody's summary
    pd.testing.assert_frame_equal(ours, theirs, check_names=False, rtol=1e-12)
    regular = ours.loc[int(log["customer_id"].iloc[0])]
    # 20 Jan (25), 1 Mar (0), 31 Mar (14.5), 5 May (10), 30 Jun (40): five repeat days.
    assert regular["frequency"] == 5
    assert regular["monetary_value"] == pytest.approx(89.5 / 5)


def test_the_database_later_period_check_equals_the_pandas_check(log):
    counts = purchase_counts(calibration_end=CALIBRATION_END)
    summary, actual, repeat_by_day = counts.calibration()
    ours = clv.holdout_check(summary, actual, repeat_by_day, CALIBRATION_END, date(2024, 7, 2))
    theirs = clv.calibration_holdout_check(log, CALIBRATION_END, date(2024, 7, 2))

    columns = ["frequency", "recency", "T", "first_purchase", "expected", "actual"]
    pd.testing.assert_frame_equal(
        ours.customers[columns], theirs.customers[columns], check_names=False, rtol=1e-12
    )
    assert len(ours.customers) == 4  # "late" started after the calibration end
    # Purchase days after 31 March: regular 2, "on the end" 1, lapsed 0, once 0.
    assert ours.total_actual == theirs.total_actual == 3
    pd.testing.assert_frame_equal(ours.cumulative, theirs.cumulative, rtol=1e-12)
    assert ours.calibration_periods == theirs.calibration_periods


def test_the_database_tracking_of_a_whole_history_equals_the_pandas_tracking(log):
    counts = purchase_counts()
    end = counts.observation_end
    summary = counts.summary(end=end)
    model = clv.BGNBD(0.5, 5.0, 0.7, 2.5, 0.0, len(summary))

    ours = clv.cumulative_tracking_from_counts(
        model, summary["first_purchase"], counts.repeat_by_day["all"], end
    )
    theirs = clv.cumulative_tracking(log, model, end)
    pd.testing.assert_frame_equal(ours, theirs, rtol=1e-12)
    # Every repeat purchase day of everybody, "late" included: 5 + 1 + 2 + 2.
    assert ours["actual"].iloc[-1] == 10


def test_counts_before_a_day_leave_that_day_and_later_purchases_out(log):
    """What activating an older run reads: the history before its observation end."""
    end = date(2024, 4, 10)  # "late" buys for the first time on this day
    ours = purchase_counts(before=end).summary(end=end)
    theirs = clv.summarise_transactions(log[log["date"] < pd.Timestamp(end)], end, unit="weeks")
    pd.testing.assert_frame_equal(ours, theirs, check_names=False, rtol=1e-12)
    assert len(ours) == 4  # "late" and "returns only" left out
