"""`make run` as a newcomer runs it, and its launcher (scripts/run_dev.py) with real
processes: a fresh database gets its first model by itself, and SIGTERM, SIGINT or the death
of either child stops the web server and the worker together.

Each test runs in a throwaway DJANGO_VAR_DIR (SQLite and the filesystem broker inside it,
so nothing is shared with the suite's own database, Redis or other test sessions) on a
free port.
"""

from __future__ import annotations

import html
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_service

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sandbox_env(var_dir: Path) -> dict[str, str]:
    """The environment of a newcomer's laptop: no DATABASE_URL, no REDIS_URL."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "MODEL_STORAGE_DIR", "CELERY_QUEUE"}
        and not key.startswith(("PYTEST", "DJANGO_SETTINGS"))
    }
    env["DJANGO_VAR_DIR"] = str(var_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}") / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition, what: str, timeout: float, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"{what} within {timeout:.0f} s\n{tail}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Launched:
    """A running launcher with its log, its worker and its web server."""

    def __init__(self, process: subprocess.Popen, log: Path, port: int) -> None:
        self.process, self.log, self.port = process, log, port

    def wait_until_serving(self, timeout: float = 60) -> None:
        wait_for(lambda: port_open(self.port), "the web server did not listen", timeout, self.log)
        wait_for(
            lambda: "ready." in self.log.read_text(), "the worker not ready", timeout, self.log
        )

    def child(self, word: str) -> int:
        """The launcher's own child whose command line holds ``word``."""
        pids = [p for p in descendants(self.process.pid) if word in command_line(p)]
        direct = [p for p in pids if _parent(p) == self.process.pid]
        assert direct, f"no {word} child of the launcher: {pids}"
        return direct[0]


def _parent(pid: int) -> int:
    return int((Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def launch(tmp_path):
    """launch() starts scripts/run_dev.py on a free port in a throwaway var folder."""
    started: list[tuple[subprocess.Popen, set[int]]] = []

    def start() -> Launched:
        var_dir = tmp_path / "var"
        var_dir.mkdir(exist_ok=True)
        log = tmp_path / "launcher.log"
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "scripts/run_dev.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=sandbox_env(var_dir),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        launched = Launched(process, log, port)
        started.append((process, set()))
        launched.wait_until_serving()
        started[-1] = (process, descendants(process.pid))
        return launched

    yield start
    for process, family in started:  # whatever a failed test left running
        for pid in [process.pid, *family]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_launcher_stops_the_web_server_and_the_worker(launch, signum):
    launched = launch()
    family = descendants(launched.process.pid)
    web, worker = launched.child("runserver"), launched.child("celery")
    assert len(family) >= 4, family  # web server, worker, its pool process and beat

    launched.process.send_signal(signum)

    assert launched.process.wait(timeout=20) == 0
    wait_for(lambda: not any(alive(p) for p in family), "children survived", 10, launched.log)
    assert not alive(web) and not alive(worker)
    assert not port_open(launched.port)
    log = launched.log.read_text()
    assert "Warm shutdown" in log and "did not stop within" not in log  # in order, not killed


@pytest.mark.parametrize(("victim", "survivor"), [("celery", "runserver"), ("runserver", "celery")])
def test_when_one_child_dies_the_launcher_stops_the_other_and_fails(launch, victim, survivor):
    launched = launch()
    family = descendants(launched.process.pid)
    dying, other = launched.child(victim), launched.child(survivor)

    os.kill(dying, signal.SIGKILL)

    assert launched.process.wait(timeout=20) == 1
    wait_for(lambda: not any(alive(p) for p in family), "children survived", 10, launched.log)
    assert not alive(other)
    assert "stopped (exit code -9): stopping" in launched.log.read_text()


def sign_in(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = opener.open(f"{base}/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password}
    ).encode()
    request = urllib.request.Request(
        f"{base}/accounts/login/", data=data, headers={"Referer": f"{base}/accounts/login/"}
    )
    opener.open(request, timeout=10).read()
    return opener


def test_make_run_on_a_fresh_database_shows_segments_within_a_minute(tmp_path):
    make = shutil.which("make")
    require_service(make is not None, "make")
    ready = subprocess.run([make, "-q", ".venv/.installed"], cwd=ROOT, check=False)
    require_service(ready.returncode == 0, "an installed .venv (make run would install it)")
    var_dir, log, port = tmp_path / "newcomer", tmp_path / "make-run.log", free_port()
    var_dir.mkdir()
    started = time.monotonic()
    make_run = subprocess.Popen(
        [make, "run", f"PORT={port}", "HOST=127.0.0.1"],
        cwd=ROOT,
        env=sandbox_env(var_dir),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        password = wait_for(
            lambda: re.search(r"password: (\S+)", log.read_text()), "no password", 60, log
        ).group(1)
        wait_for(lambda: port_open(port), "the site did not start", 60, log)
        base = f"http://127.0.0.1:{port}"
        browser = sign_in(base, "admin", html.unescape(password))

        def segments_shown() -> str | None:
            page = browser.open(f"{base}/", timeout=10).read().decode()
            return page if "segments</strong> from 5,000 customers" in page else None

        page = wait_for(segments_shown, "the dashboard showed no segments", 60, log)
        elapsed = time.monotonic() - started
        assert "Training the first model in the background" in log.read_text()
        assert "No segmentation has been trained yet" not in page
        assert page.count('<article class="card') >= 2
        assert elapsed < 60, f"segments after {elapsed:.0f} s"
    finally:
        launcher = [p for p in descendants(make_run.pid) if "run_dev.py" in command_line(p)]
        family = set().union(*(descendants(p) for p in launcher), launcher)
        make_run.send_signal(signal.SIGTERM)  # make passes it on to the launcher
        make_run.wait(timeout=30)
    wait_for(lambda: not any(alive(p) for p in family), "processes survived make", 10, log)
