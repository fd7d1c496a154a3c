"""`make bench`, purchase histories: ten million transactions for a million customers.

    python bench/purchases_bench.py generate ROWS PATH  # a headerless order log
    python bench/purchases_bench.py import PATH         # import_transactions' service
    python bench/purchases_bench.py copy PATH           # PostgreSQL's own COPY, bare table
    python bench/purchases_bench.py rfm                 # rfm_refresh on the imported rows
    python bench/purchases_bench.py rfm-pandas PATH     # the same values by a pandas groupby
    python bench/purchases_bench.py clv-run             # the service's whole CLV run
    python bench/purchases_bench.py clv N               # BG/NBD + Gamma-Gamma, N customers
    python bench/purchases_bench.py clv-scipy N         # the BG/NBD likelihood, bare scipy

Each child prints one JSON line with its figures and peak memory (ru_maxrss); bench/run.py
compares them. The order log is what shops export: customer, yyyymmdd, quantity, amount,
one space between (so that COPY reads the very same file), 2 % returns, in the order the
purchases happened; its customers buy and lapse as BG/NBD customers do (LOG_BEHAVIOUR).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.children import django_setup, emit  # noqa: E402

COLUMNS = ("customer_id", "date", "quantity", "amount")
DAYS = 730
CUSTOMERS_PER_ROW = 10  # a million customers for ten million rows
CLV_TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}  # near CDNOW's
FIRST_DAY = date(2024, 11, 1)
# The whole CLV run checks a model fitted up to 26 weeks before the end of the log.
CLV_CALIBRATION_END = FIRST_DAY + timedelta(days=DAYS - 1 - 26 * 7)
CLV_RUN_TARGET_SECONDS = 120


# The order log's customers behave as BG/NBD customers do (so the lifetime-value check has
# something to find): a purchase rate per customer (Gamma), a chance to drop out after
# each purchase (Beta), first purchases over the log's first year; about ten rows each.
LOG_BEHAVIOUR = {"r": 2.0, "alpha": 10.0, "a": 0.8, "b": 6.0}
LOG_SPEND = (6.0, 4.0, 15.0)  # Gamma-Gamma (p, q, v): about 30 a purchase


def generate(rows: int, path: str) -> None:
    import pandas as pd

    from purchases.clv import simulate_transactions

    started = time.perf_counter()
    rng = np.random.default_rng(10)
    customers = rows // CUSTOMERS_PER_ROW
    log = simulate_transactions(
        customers, **LOG_BEHAVIOUR, start=FIRST_DAY, end=FIRST_DAY + timedelta(days=DAYS - 1),
        acquisition_days=365, spend=LOG_SPEND, seed=10,
    )  # fmt: skip
    # Exactly ``rows`` rows: a random subset, or more purchases on days already in the log
    # (two purchases on one day are two rows, as shops record them).
    picked = rng.choice(len(log), rows, replace=rows > len(log))
    # In the order the purchases happened, as shops export them (customers mixed in a day).
    log = log.iloc[picked].sort_values("date", kind="stable")
    amount = log["amount"].to_numpy().copy()
    amount[rng.random(rows) < 0.02] *= -1  # returns
    frame = pd.DataFrame(
        {
            "customer_id": np.char.add(
                "C", np.char.zfill(log["customer_id"].to_numpy().astype(str), 7)
            ),
            "date": log["date"].dt.strftime("%Y%m%d").to_numpy(),
            "quantity": rng.integers(1, 6, rows),
            "amount": amount,
        }
    )
    frame.to_csv(path, sep=" ", header=False, index=False)
    emit(seconds=time.perf_counter() - started, rows=rows, bytes=Path(path).stat().st_size)


def _reset_purchases() -> None:
    from django.core.management import call_command
    from django.db import connection

    from customers.models import Customer
    from purchases.models import ClvRun, CustomerRfm, CustomerValue, Purchase, PurchaseFile

    call_command("migrate", verbosity=0)
    models = (Purchase, PurchaseFile, CustomerRfm, CustomerValue, ClvRun, Customer)
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def import_(path: str) -> None:
    django_setup()
    from purchases.services import TransactionOptions, transactions_import_file

    _reset_purchases()
    started = time.perf_counter()
    report = transactions_import_file(
        path=path, options=TransactionOptions(column_names=COLUMNS, file_name=path)
    )
    seconds = time.perf_counter() - started
    assert report.written, report.errors[:3]
    emit(
        seconds=seconds,
        rows=report.purchases_added,
        customers=report.customers_created,
        rfm_seconds=report.rfm_seconds,
    )


def copy(path: str) -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bare_purchases "
            "(customer_id text, date date, quantity integer, amount double precision)"
        )
        connection.execute("TRUNCATE bare_purchases")
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY bare_purchases FROM STDIN WITH (FORMAT text, DELIMITER ' ')"
            ) as copying,
            open(path, "rb") as source,
        ):
            while block := source.read(1 << 20):
                copying.write(block)
        seconds = time.perf_counter() - started
        rows = connection.execute("SELECT COUNT(*) FROM bare_purchases").fetchone()[0]
        connection.execute("DROP TABLE bare_purchases")
    emit(seconds=seconds, rows=rows)


def rfm() -> None:
    django_setup()
    from purchases.services import rfm_refresh

    started = time.perf_counter()
    customers = rfm_refresh()
    emit(seconds=time.perf_counter() - started, customers=customers)


def rfm_pandas(path: str) -> None:
    """Recency, frequency (purchase days), total, mean, tenure and days between purchases
    per customer by a groupby on the rows already in memory (reading is not timed)."""
    import pandas as pd

    log = pd.read_csv(
        path,
        sep=" ",
        header=None,
        names=list(COLUMNS),
        dtype={"customer_id": str, "date": str, "quantity": "int32"},
    )
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    started = time.perf_counter()
    as_of = log["date"].max() + pd.Timedelta(days=1)
    per = log.groupby("customer_id").agg(
        first=("date", "min"),
        last=("date", "max"),
        days=("date", "nunique"),
        total=("amount", "sum"),
        purchases=("amount", "size"),
    )
    result = pd.DataFrame(
        {
            "recency": (as_of - per["last"]).dt.days,
            "frequency": per["days"],
            "total": per["total"],
            "mean": per["total"] / per["purchases"],
            "tenure": (as_of - per["first"]).dt.days,
            "interpurchase": ((per["last"] - per["first"]).dt.days / (per["days"] - 1)).where(
                per["days"] > 1
            ),
        }
    )
    emit(seconds=time.perf_counter() - started, customers=len(result))


def clv_run() -> None:
    """The service's whole CLV run on the imported purchases, as `clv --sync
    --calibration-end` does it: counts, the check on the last 26 weeks, the fit, the
    tracking chart and every customer's value written, the run activated."""
    django_setup()
    from purchases.clv_services import clv_run_execute, clv_run_start
    from purchases.models import ClvRun

    started = time.perf_counter()
    run = clv_run_start(calibration_end=CLV_CALIBRATION_END, enqueue=False)
    run = clv_run_execute(run_id=run.id)
    seconds = time.perf_counter() - started
    assert run.status == ClvRun.Status.SUCCEEDED, run.error
    emit(
        seconds=seconds,
        customers=run.customers,
        repeat_customers=run.repeat_customers,
        params=run.parameters,
        expected=run.holdout["total_expected"],
        actual=run.holdout["total_actual"],
    )


def _summary(n: int):
    from purchases import clv

    data = clv.simulate_bgnbd(n, **CLV_TRUE, T=52.0, seed=3)
    spend = clv.simulate_gamma_gamma(data["frequency"], 6.0, 4.0, 15.0, seed=4)
    return data, spend


def clv_fit(n: int) -> None:
    from purchases import clv

    data, spend = _summary(n)
    started = time.perf_counter()
    model = clv.fit_bgnbd(data["frequency"], data["recency"], data["T"])
    bgnbd_seconds = time.perf_counter() - started
    repeat = data["frequency"] > 0
    started = time.perf_counter()
    clv.fit_gamma_gamma(data["frequency"][repeat], spend[repeat])
    emit(
        seconds=bgnbd_seconds,
        gamma_gamma_seconds=time.perf_counter() - started,
        params=model.params,
        log_likelihood=model.log_likelihood,
    )


def clv_scipy(n: int) -> None:
    """The BG/NBD likelihood (Fader, Hardie and Lee 2005, eq. 6) written out with
    scipy.special and minimised by scipy.optimize with numerical gradients."""
    from scipy.optimize import minimize
    from scipy.special import betaln, gammaln

    data, _spend = _summary(n)
    x, t_x, T = (data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))

    def negative_ll(log_params):
        r, alpha, a, b = np.exp(log_params)
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        first = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore"):
            second = np.where(
                x > 0,
                betaln(a + 1, b + np.maximum(x, 1) - 1)
                - betaln(a, b)
                - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        return -np.sum(common + np.logaddexp(first, second))

    started = time.perf_counter()
    result = minimize(negative_ll, np.zeros(4), method="L-BFGS-B")
    seconds = time.perf_counter() - started
    r, alpha, a, b = np.exp(result.x)
    emit(
        seconds=seconds, params={"r": r, "alpha": alpha, "a": a, "b": b}, log_likelihood=-result.fun
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {
        "generate": lambda: generate(int(args[0]), args[1]),
        "import": lambda: import_(args[0]),
        "copy": lambda: copy(args[0]),
        "rfm": rfm,
        "rfm-pandas": lambda: rfm_pandas(args[0]),
        "clv-run": clv_run,
        "clv": lambda: clv_fit(int(args[0])),
        "clv-scipy": lambda: clv_scipy(int(args[0])),
    }[command]()


# --------------------------------------------------------------------------- the report


def compare(rows: int, clv_customers: int, child, database_url, work: Path) -> None:
    """Run the children (bench/run.py's ``child``) and print the figures against targets."""
    url = database_url("purchases")
    log = str(work / f"orders-{rows}.txt")
    run = [sys.executable, str(Path(__file__))]
    print(
        f"\n## {rows:,} transactions, {rows // CUSTOMERS_PER_ROW:,} customers "
        f"({url.split('://')[0]})",
        flush=True,
    )
    made = child(["generate", str(rows), log], url, run)
    print(f"  order log: {made['bytes'] / 2**20:,.0f} MB, written in {made['seconds']:.1f} s")
    ours = child(["import", log], url, run)
    bare = child(["copy", log], url, run) if url.startswith("postgres") else None
    rate = ours["rows"] / ours["seconds"]
    print(
        f"  import_transactions: {ours['seconds']:.1f} s, {rate:,.0f} rows/s, "
        f"peak {ours['peak_mb']:.0f} MB (RFM brought up to date inside: "
        f"{ours['rfm_seconds']:.1f} s)"
    )
    if bare:
        print(
            f"  bare COPY of the same file: {bare['seconds']:.1f} s, "
            f"{bare['rows'] / bare['seconds']:,.0f} rows/s; "
            f"ratio {ours['seconds'] / bare['seconds']:.1f}"
        )
    rfm = child(["rfm"], url, run)
    pandas = child(["rfm-pandas", log], url, run)
    ratio = rfm["seconds"] / pandas["seconds"]
    print(
        f"  RFM refresh in the database: {rfm['seconds']:.1f} s for {rfm['customers']:,} "
        f"customers, peak {rfm['peak_mb']:.0f} MB"
    )
    print(
        f"  pandas groupby on the rows in memory: {pandas['seconds']:.1f} s, "
        f"peak {pandas['peak_mb']:.0f} MB"
    )
    verdict = "OK" if ratio <= 2 and rfm["peak_mb"] < 2048 else "MISSED"
    print(f"  ratio {ratio:.2f} (target <= 2, peak < 2 GB) {verdict}")
    report_clv_run(child(["clv-run"], url, run))
    ours = child(["clv", str(clv_customers)], url, run)
    scipy = child(["clv-scipy", str(clv_customers)], url, run)
    print(f"\n## CLV fit on {clv_customers:,} customers")
    print(
        f"  purchases.clv BG/NBD: {ours['seconds']:.2f} s (Gamma-Gamma "
        f"{ours['gamma_gamma_seconds']:.2f} s), log-likelihood {ours['log_likelihood']:,.1f}"
    )
    print(
        f"  bare scipy (L-BFGS-B, numerical gradient): {scipy['seconds']:.2f} s, "
        f"log-likelihood {scipy['log_likelihood']:,.1f}; "
        f"ratio {ours['seconds'] / scipy['seconds']:.2f}"
    )
    worst = max(abs(ours["params"][k] / scipy["params"][k] - 1) for k in CLV_TRUE)
    print(
        f"  parameters {json.dumps({k: round(v, 3) for k, v in ours['params'].items()})}, "
        f"largest relative difference from scipy's {worst:.1e}"
    )


def report_clv_run(result: dict) -> None:
    load = Path("/proc/loadavg").read_text().split()[0]
    fast = result["seconds"] <= CLV_RUN_TARGET_SECONDS and result["peak_mb"] < 2048
    params = result["params"]
    print(
        f"  CLV run through the service (clv --sync --calibration-end {CLV_CALIBRATION_END}): "
        f"{result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB for "
        f"{result['customers']:,} customers ({result['repeat_customers']:,} repeat) (target "
        f"<= {CLV_RUN_TARGET_SECONDS} s, peak < 2 GB) {'OK' if fast else 'MISSED'} "
        f"(load average {load})"
    )
    print(
        f"    r={params['r']:.4g} alpha={params['alpha']:.4g} a={params['a']:.3g} "
        f"b={params['b']:.4g}; last 26 weeks: expected {result['expected']:,.0f} repeat "
        f"purchases, actual {result['actual']:,}"
    )
