"""`make bench`: speed and memory as ratios against a baseline measured in the same run.

Every measurement runs in a fresh process on the same generated customers:
- 5,000 customers: the full retrain through the training service (read from the
  database, sweep, fit, stability, names, assignments written, run activated)
  against a bare scikit-learn script doing the same sweep on an in-memory array.
- 1,000,000 customers: the same end-to-end retrain against a bare MiniBatchKMeans
  script with the engine's large-data settings on an in-memory array.
- One prediction through the service against scikit-learn's predict on one row.
- Gaussian mixture, HDBSCAN and Ward at 5,000 and 100,000 customers (and at the large
  size): the retrain through the service against a bare script doing the same fits and
  metrics (silhouette per K, Calinski-Harabasz, Davies-Bouldin, 10 stability refits) on
  an in-memory array, with the same sample sizes.
- Drift of the trained run over every customer (operations), at both sizes: target a few
  seconds at a million.
- 10,000,000 transactions (bench/purchases_bench.py): the import against a bare COPY of the
  same file, the RFM refresh against a pandas groupby, the service's whole CLV run (time and
  peak memory against targets), the CLV fit against bare scipy.

The database is BENCH_DATABASE_URL (PostgreSQL recommended: the production path,
COPY included) or, when unset, SQLite files under var/bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
sys.path.insert(0, str(ROOT))
from bench.purchases_bench import compare as purchases_compare  # noqa: E402
from bench.purchases_bench import report_clv_run  # noqa: E402

CHILD = [sys.executable, str(ROOT / "bench" / "children.py")]


def database_url(name: str) -> str:
    base = os.environ.get("BENCH_DATABASE_URL", "")
    if not base:
        return f"sqlite:///{WORK / f'{name}.sqlite3'}"
    parsed = urlparse(base)
    database = f"{parsed.path.lstrip('/') or 'segmentation'}_bench_{name}"
    _create_postgres_database(base, database)
    return urlunparse(parsed._replace(path=f"/{database}"))


def _create_postgres_database(base: str, database: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database}"')


def child(args: list[str], url: str, program: list[str] = CHILD) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MODEL_STORAGE_DIR": str(WORK / "models"),
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(program + args, env=env, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"bench step {args[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(
    label: str,
    count: int,
    baseline: str,
    target: float | None,
    memory_limit: float | None,
    algorithm: str = "kmeans",
):
    """One retrain through the service against its bare script; ``target``: the ratio
    the issue sets (None where it asks only for time and memory)."""
    url = database_url(label)
    npy = str(WORK / f"{label}.npy")
    print(f"\n## {algorithm}: {count:,} customers ({url.split('://')[0]})", flush=True)
    child(["prepare", str(count), npy], url)
    ours = child(["train", algorithm], url)
    bare = child([baseline, npy] if algorithm == "kmeans" else [baseline, algorithm, npy], url)
    ratio = ours["seconds"] / bare["seconds"]
    load = Path("/proc/loadavg").read_text().split()[0]  # the machine's load, per figure
    worst = max(abs(a - b) for a, b in zip(ours["silhouette"], bare["silhouette"]))
    rows = [
        ("retrain through the service", f"{ours['seconds']:.2f} s", f"{ours['peak_mb']:.0f} MB"),
        (f"bare script ({baseline})", f"{bare['seconds']:.2f} s", f"{bare['peak_mb']:.0f} MB"),
    ]
    for name, seconds, memory in rows:
        print(f"  {name:<34} {seconds:>10} {memory:>10}")
    verdict = (
        "(no target: time and memory asked)"
        if target is None
        else f"(target <= {target}) {'OK' if ratio <= target else 'MISSED'}"
    )
    print(f"  ratio {ratio:.2f} {verdict} (load average {load})")
    print(
        f"  chosen K: service {ours['k']}, script {bare['k']} "
        f"{'(same)' if ours['k'] == bare['k'] else '(DIFFERENT)'}"
    )
    print(f"  largest silhouette difference over K: {worst:.2e}")
    print(f"  stability: service {ours['stability']:.3f}, script {bare['stability']:.3f}")
    if memory_limit:
        verdict = "OK" if ours["peak_mb"] < memory_limit else "MISSED"
        print(
            f"  service peak memory {ours['peak_mb']:.0f} MB (target < {memory_limit:.0f}) "
            f"{verdict}"
        )
    print(f"  service steps (s): {json.dumps(ours['timings'])}")
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000, help="customers for the big case")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--algorithms",
        default="gmm,hdbscan,ward",
        help="the other algorithms to measure at 5,000 and 100,000 customers ('' for none)",
    )
    parser.add_argument("--skip-medium", action="store_true", help="no 100,000 case")
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--clv-customers", type=int, default=100_000)
    parser.add_argument("--only-purchases", action="store_true")
    parser.add_argument(
        "--only-clv-run",
        action="store_true",
        help="the service's whole CLV run alone, on the purchases an earlier run imported",
    )
    parser.add_argument("--skip-purchases", action="store_true", help="no transactions case")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    import numpy
    import sklearn

    print(
        f"# make bench on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {numpy.__version__}, scikit-learn "
        f"{sklearn.__version__}"
    )
    if args.only_clv_run:
        program = [sys.executable, str(ROOT / "bench" / "purchases_bench.py")]
        return report_clv_run(child(["clv-run"], database_url("purchases"), program))
    if args.only_purchases:
        return purchases_compare(args.transactions, args.clv_customers, child, database_url, WORK)
    small_url = compare("small", 5_000, "baseline-small", 0.5, None)
    prediction = child(["predict"], small_url)
    print("\n## one prediction")
    print(
        f"  service {prediction['service_ms']:.3f} ms, sklearn predict "
        f"{prediction['sklearn_ms']:.3f} ms, ratio "
        f"{prediction['service_ms'] / prediction['sklearn_ms']:.2f}"
    )
    report_drift(small_url, 5_000)
    for algorithm in filter(None, args.algorithms.split(",")):
        compare("small", 5_000, "baseline-algorithm", 0.7, None, algorithm)
        if not args.skip_medium:
            compare("medium", 100_000, "baseline-algorithm", 1.0, 2048, algorithm)
    if not args.skip_large:
        large_url = compare("large", args.large, "baseline-large", 1.0, 2048)
        report_drift(large_url, args.large)
        # Issue 15 sets ratios at 5,000 and 100,000; at a million, time and peak memory.
        for algorithm in filter(None, args.algorithms.split(",")):
            compare("large", args.large, "baseline-algorithm", None, 2048, algorithm)
    if args.skip_purchases:
        return
    purchases_compare(args.transactions, args.clv_customers, child, database_url, WORK)


DRIFT_TARGET_SECONDS = 5.0


def report_drift(url: str, count: int) -> None:
    result = child(["drift"], url)
    verdict = "OK" if result["seconds"] <= DRIFT_TARGET_SECONDS else "MISSED"
    print(f"\n## drift over {count:,} customers")
    print(
        f"  {result['seconds']:.2f} s ({result['cpu_seconds']:.2f} s of CPU here) for "
        f"{result['customers']:,} customers (target <= "
        f"{DRIFT_TARGET_SECONDS:.0f} s) {verdict}; level {result['level']}, largest PSI "
        f"{result['max_psi']:.3f}, peak {result['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
