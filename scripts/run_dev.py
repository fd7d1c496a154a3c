"""Serve the site and a Celery worker together; Ctrl-C (or SIGTERM) stops both.

Used by `make run`. Both children write to this terminal, so their logs interleave.
SIGINT, SIGTERM and SIGHUP to this launcher stop both children, and when either child
dies the launcher stops the other and exits with an error, so a crashed worker is not
missed. Each child runs in a process group of its own: the launcher alone decides when
they stop (a terminal's Ctrl-C reaches only the launcher, which then stops them in order),
and whatever a child leaves behind (the worker's pool and beat processes) is stopped with
its group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

# A worker's warm shutdown waits for its task; an idle one takes several seconds.
GRACE_SECONDS = 20
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM if the launcher itself is killed (kill -9 included)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        process_group=0,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to each child (a warm shutdown for the worker), then SIGKILL for anything of
    theirs still running after GRACE_SECONDS."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop within {GRACE_SECONDS} s: killed.", file=sys.stderr)
            _signal_group(child.pid, signal.SIGKILL)
            child.wait()
    # A child that died first may have left its own children (the worker's pool, beat).
    for child in children.values():
        if _group_alive(child.pid):
            _signal_group(child.pid, signal.SIGTERM)
    leftovers_deadline = time.monotonic() + 3
    while (
        any(_group_alive(c.pid) for c in children.values())
        and time.monotonic() < leftovers_deadline
    ):
        time.sleep(0.1)
    for child in children.values():
        _signal_group(child.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    received: list[int] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    python = sys.executable
    named = {
        "the worker": start(
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
                # Celery beat inside the worker: it fails runs whose worker went silent and
                # re-sends runs whose queue message was lost; it starts scheduled retrains,
                # measures drift and prunes (its schedule is in the database:
                # CELERY_BEAT_SCHEDULER, so schedules edited on the site apply at once).
                "--beat",
            ]
        ),
        "the web server": start(
            [python, "manage.py", "runserver", "--noreload", f"{args.host}:{args.port}"]
        ),
    }
    print(
        f"\n  Site: http://{args.host}:{args.port}/  (Ctrl-C stops the site and the worker)\n",
        flush=True,
    )
    dead = []
    while not received:
        dead = [name for name, child in named.items() if child.poll() is not None]
        if dead:
            break
        time.sleep(0.2)
    if dead:
        others = [name for name in named if name not in dead]
        print(
            f"\n  {dead[0].capitalize()} stopped (exit code {named[dead[0]].returncode}): "
            f"stopping {' and '.join(others) or 'everything'}.\n",
            file=sys.stderr,
            flush=True,
        )
    stop(named)
    return 1 if dead and not received else 0


if __name__ == "__main__":
    sys.exit(main())
