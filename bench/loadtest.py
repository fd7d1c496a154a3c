"""`make loadtest`: the site under gunicorn on loopback, POST /api/predict/ against the
trivial authenticated GET /api/ping/ at the same concurrency.

Reports throughput, p50 and p99 latency and errors for each; targets: prediction
throughput at least 0.75 of ping's, p99 under 50 ms, no errors. Requests go only to
127.0.0.1, in bounded loops that stop by themselves.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT = "127.0.0.1", 8765
BODY = json.dumps(
    {"age": 38, "annual_income": 95, "spending_score": 60, "purchase_frequency": 28}
).encode()


def prepare(env: dict) -> str:
    """Migrate, ensure demo customers, an active model and a token; return the token."""
    python = [sys.executable, "manage.py"]
    subprocess.run([*python, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    subprocess.run(
        [*python, "generate_customers", "--if-empty"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    script = (
        "from django.contrib.auth.models import User, Group\n"
        "from clustering.models import TrainingRun\n"
        "from django.core.management import call_command\n"
        "if not TrainingRun.objects.filter(is_active=True).exists():\n"
        "    call_command('train', sync=True, verbosity=0)\n"
        "user, _ = User.objects.get_or_create(username='loadtest')\n"
        "user.groups.add(Group.objects.get(name='Marketing'))\n"
        "from clustering.tokens import api_token_create\n"
        "print(api_token_create(user=user, name='loadtest')[1])\n"
    )
    result = subprocess.run(
        [*python, "shell", "-c", script],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]


def start_server(env: dict, workers: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "segmentation_site.wsgi",
            "--bind",
            f"{HOST}:{PORT}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    for _ in range(100):
        probe = http.client.HTTPConnection(HOST, PORT, timeout=1)
        try:
            # A real request: an idle open socket would hold a sync worker for its timeout.
            probe.request("GET", "/api/openapi.json")
            probe.getresponse().read()
            return server
        except OSError:
            time.sleep(0.1)
        finally:
            probe.close()
    server.kill()
    sys.exit("gunicorn did not start")


def hammer(method: str, path: str, token: str, seconds: float, concurrency: int) -> dict:
    """Send requests from `concurrency` threads for `seconds`; collect latencies and errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, PORT, timeout=10)
        mine, failed = [], 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request(
                    method, path, body=BODY if method == "POST" else None, headers=headers
                )
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(HOST, PORT, timeout=10)
            mine.append(time.perf_counter() - started)
            failed += not ok
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "segmentation_site.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_HTTPS": "false",  # plain HTTP on loopback
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    env.setdefault("DJANGO_VAR_DIR", str(ROOT / "var" / "loadtest"))
    token = prepare(env)
    server = start_server(env, args.workers)
    try:
        hammer("GET", "/api/ping/", token, 1, args.concurrency)  # warm up both paths
        hammer("POST", "/api/predict/", token, 1, args.concurrency)
        ping = hammer("GET", "/api/ping/", token, args.seconds, args.concurrency)
        predict = hammer("POST", "/api/predict/", token, args.seconds, args.concurrency)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"# gunicorn, {args.workers} workers, {args.concurrency} concurrent clients, "
        f"{args.seconds:.0f} s each, {os.cpu_count()} cores"
    )
    for name, result in (("GET /api/ping/", ping), ("POST /api/predict/", predict)):
        print(
            f"  {name:<20} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms  errors {result['errors']}"
        )
    ratio = predict["rps"] / ping["rps"]
    met = ratio >= 0.75 and predict["p99_ms"] < 50 and predict["errors"] == 0
    print(
        f"  prediction throughput = {ratio:.2f} of ping (target >= 0.75), "
        f"p99 {predict['p99_ms']:.1f} ms (target < 50): {'OK' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
