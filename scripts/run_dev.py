"""Serve the site and a Celery worker together; Ctrl-C stops both.

Used by `make run`. Each child runs in the foreground of this script, so
their logs interleave in one terminal, and the script exits when either
child dies so a crashed worker is not missed.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command)


def stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    python = sys.executable
    children = [
        start(
            [
                python,
                "-m",
                "celery",
                "-A",
                "segmentation_site",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                # Celery beat inside the worker: it fails runs whose worker went silent.
                "--beat",
            ]
        ),
        start([python, "manage.py", "runserver", "--noreload", f"{args.host}:{args.port}"]),
    ]
    print(
        f"\n  Site: http://{args.host}:{args.port}/  (Ctrl-C stops the site and the worker)\n",
        flush=True,
    )
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop(children)
    return 0


if __name__ == "__main__":
    sys.exit(main())
