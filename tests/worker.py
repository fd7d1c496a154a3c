"""A real Celery worker process for integration tests.

It runs `celery worker` against the test database (the same file or
PostgreSQL database pytest-django created) and the configured broker:
Redis when REDIS_URL is set (always in CI), else the filesystem broker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlparse

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def test_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(log_path: Path, *options: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "MODEL_STORAGE_DIR": str(settings.MODEL_STORAGE_DIR),
        "DJANGO_SETTINGS_MODULE": "segmentation_site.settings",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "segmentation_site",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--purge",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"test-{os.getpid()}@%h",
        *options,
    ]
    log = open(log_path, "w")  # noqa: SIM115 (closed when the process is stopped)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_file = log
    process.log_path = log_path
    _wait_until_ready(process, log_path)
    return process


def _wait_until_ready(process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited:\n{log_path.read_text()[-3000:]}")
        if "ready." in log_path.read_text():
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log_file.close()


def start_worker_with_beat(log_path: Path) -> subprocess.Popen:
    """A worker with Celery beat inside it, as `make run` starts it: beat reads its schedule
    from the test database (django-celery-beat's database scheduler)."""
    return start_worker(
        log_path, "--beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"
    )
