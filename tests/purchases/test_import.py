"""Order logs as shops export them: imported, deduplicated, turned into RFM values."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from customers.models import Customer
from customers.selectors import catalogue_current
from purchases.models import CustomerRfm, Purchase
from purchases.rfm import GROUPS, group_for
from purchases.services import rfm_refresh

pytestmark = pytest.mark.django_db

# customer, date, quantity, amount; runs of spaces; no header row (the CDNOW shape).
ORDER_LOG = """\
00001   19970101   1   11.77
00002   19970112   1   12.00
00002   19970112   5   77.00
00003   19970102   2   20.76
00003   19970330   2   20.76
00003   19970402   2   19.54
00004   19970101   2   29.33
00004   19970118   2   29.73
00004   19970802   1   14.96
00004   19971212   2   26.48
"""
COLUMNS = "customer_id,date,quantity,amount"


def write(tmp_path, text: str, name: str = "orders.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run(path, *options: str) -> str:
    out = io.StringIO()
    call_command("import_transactions", str(path), *options, "--no-progress", stdout=out)
    return out.getvalue()


def test_a_headerless_whitespace_order_log_imports_with_named_columns(tmp_path):
    output = run(write(tmp_path, ORDER_LOG), "--columns", COLUMNS)

    assert "Imported 10 purchases; 4 new customers created." in output
    assert "Dates read as yyyymmdd" in output
    assert Purchase.objects.count() == 10
    assert set(Customer.objects.values_list("customer_id", flat=True)) == {
        "00001",
        "00002",
        "00003",
        "00004",
    }


def test_without_a_header_or_columns_the_command_asks_what_the_columns_hold(tmp_path):
    with pytest.raises(CommandError, match="--columns customer_id,date,quantity,amount"):
        run(write(tmp_path, ORDER_LOG))
    assert not Purchase.objects.exists()


def test_the_same_file_twice_adds_nothing(tmp_path):
    path = write(tmp_path, ORDER_LOG)
    run(path, "--columns", COLUMNS)

    with pytest.raises(CommandError, match="already imported"):
        run(path, "--columns", COLUMNS)

    assert Purchase.objects.count() == 10


def test_identical_rows_in_one_file_are_two_purchases(tmp_path):
    run(write(tmp_path, "a 20240105 1 5.00\na 20240105 1 5.00\n"), "--columns", COLUMNS)

    assert Purchase.objects.filter(customer__customer_id="a").count() == 2


def test_orders_imported_before_are_skipped_by_order_id(tmp_path):
    header = "Order ID,Customer,Date,Amount\n"
    run(write(tmp_path, header + "O-1,a,2024-01-05,10\nO-2,b,2024-01-06,20\n", "jan.csv"))

    output = run(write(tmp_path, header + "O-2,b,2024-01-06,20\nO-3,b,2024-02-01,30\n", "b.csv"))

    assert "1 rows of orders imported before were skipped" in output
    assert sorted(Purchase.objects.values_list("order_id", flat=True)) == ["O-1", "O-2", "O-3"]


def test_ambiguous_dates_are_never_guessed(tmp_path):
    text = "customer,date,amount\na,01-02-2024,5\nb,03-04-2024,6\n"

    with pytest.raises(CommandError, match="could be dd-mm-yyyy or mm-dd-yyyy"):
        run(write(tmp_path, text))
    run(write(tmp_path, text), "--date-format", "dd-mm-yyyy")

    assert Purchase.objects.get(customer__customer_id="a").date == date(2024, 2, 1)


def test_a_negative_amount_is_a_return_and_lowers_the_total(tmp_path):
    text = "customer,date,amount\na,2024-01-05,50\na,2024-01-20,-20\n"
    run(write(tmp_path, text))

    assert CustomerRfm.objects.get(customer__customer_id="a").monetary_total == 30


def test_a_bad_row_is_reported_with_row_column_and_reason_and_nothing_is_written(tmp_path):
    text = "customer,date,amount\na,2024-01-05,50\nb,2024-13-45,5\nc,2024-01-07,abc\n"

    with pytest.raises(CommandError, match="2 problem"):
        call_command(
            "import_transactions", str(write(tmp_path, text)), "--date-format", "iso",
            stdout=io.StringIO(), stderr=(err := io.StringIO()),
        )  # fmt: skip

    assert "row 3, column 'date': date is not a date" in err.getvalue()
    assert "row 4, column 'amount': amount is not a number" in err.getvalue()
    assert not Purchase.objects.exists()
    assert not Customer.objects.exists()


def test_existing_only_refuses_unknown_customers(tmp_path):
    with pytest.raises(CommandError, match="customers that do not exist"):
        run(write(tmp_path, ORDER_LOG), "--columns", COLUMNS, "--existing-only")
    assert not Purchase.objects.exists()


def test_rfm_values_equal_a_pandas_computation(tmp_path):
    run(write(tmp_path, ORDER_LOG), "--columns", COLUMNS)
    log = pd.read_csv(io.StringIO(ORDER_LOG), sep=r"\s+", header=None, dtype={0: str})
    log.columns = ["customer", "date", "quantity", "amount"]
    log["date"] = pd.to_datetime(log["date"].astype(str), format="%Y%m%d")
    as_of = log["date"].max() + pd.Timedelta(days=1)
    expected = log.groupby("customer").agg(
        last=("date", "max"), first=("date", "min"), days=("date", "nunique"),
        total=("amount", "sum"), purchases=("amount", "size"),
    )  # fmt: skip

    for customer_id, row in expected.iterrows():
        rfm = CustomerRfm.objects.get(customer__customer_id=customer_id)
        assert rfm.recency_days == (as_of - row["last"]).days
        assert rfm.tenure_days == (as_of - row["first"]).days
        assert rfm.frequency == row["days"]  # purchase days: two on one day are one visit
        assert rfm.monetary_total == pytest.approx(row["total"])
        assert rfm.monetary_mean == pytest.approx(row["total"] / row["purchases"])
    assert CustomerRfm.objects.get(customer__customer_id="00002").frequency == 1


def test_scores_are_quintiles_and_every_customer_gets_the_group_of_its_scores(tmp_path):
    lines = [f"c{i:03d} 2024{1 + i % 12:02d}{1 + i % 27:02d} 1 {i + 1}" for i in range(100)]
    lines += [f"c{i:03d} 20241228 1 5" for i in range(0, 100, 3)]  # a third come back
    run(write(tmp_path, "\n".join(lines) + "\n"), "--columns", COLUMNS)

    scored = list(CustomerRfm.objects.all())
    for score in ("r_score", "f_score", "m_score"):
        counts = pd.Series([getattr(r, score) for r in scored]).value_counts()
        assert sorted(counts.index) == [1, 2, 3, 4, 5]
        assert set(counts) == {20}  # quintiles of 100 customers
    for rfm in scored:
        assert rfm.group == group_for(rfm.r_score, rfm.f_score).key
    # The highest spender is in the top M quintile.
    assert CustomerRfm.objects.get(customer__customer_id="c099").m_score == 5


def test_scores_are_reproducible(tmp_path):
    run(write(tmp_path, ORDER_LOG), "--columns", COLUMNS)
    before = list(CustomerRfm.objects.order_by("pk").values_list("r_score", "f_score", "group"))

    rfm_refresh()

    assert list(CustomerRfm.objects.order_by("pk").values_list("r_score", "f_score", "group")) == (
        before
    )


def test_every_group_has_a_strategy_and_every_score_pair_a_group():
    assert len(GROUPS) == 11
    assert all(group.description and group.actions for group in GROUPS)
    reached = {group_for(r, f).key for r in range(1, 6) for f in range(1, 6)}
    assert reached == {group.key for group in GROUPS}


def test_rfm_values_join_the_feature_catalogue_once_there_are_purchases(tmp_path):
    assert "rfm_recency" not in catalogue_current()

    run(write(tmp_path, ORDER_LOG), "--columns", COLUMNS)

    catalogue = catalogue_current()
    assert {"rfm_recency", "rfm_frequency", "rfm_monetary"} <= set(catalogue.keys)
    assert catalogue["rfm_recency"].label == "Days since last purchase"


def test_demo_histories_give_every_customer_rfm_values_and_plant_the_behaviours():
    call_command("generate_customers", count=400, seed=3, stdout=io.StringIO())

    call_command("generate_transactions", seed=3, stdout=io.StringIO())
    call_command("generate_transactions", seed=3, if_empty=True, stdout=io.StringIO())

    assert CustomerRfm.objects.count() == 400
    groups = set(CustomerRfm.objects.values_list("group", flat=True))
    assert {"champions", "hibernating", "new", "at_risk"} <= groups
    one_timers = CustomerRfm.objects.filter(frequency=1).count()
    assert 0.25 * 400 < one_timers < 0.6 * 400  # one-time buyers and most new customers
