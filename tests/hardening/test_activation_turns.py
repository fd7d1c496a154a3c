"""Four managers activate two runs at the same moment, through a live server on PostgreSQL:
activations take turns, and every request gets a page saying what happened."""

from __future__ import annotations

import http.cookiejar
import io
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection

from clustering.models import Cluster, Segment, TrainingRun
from clustering.services import run_activate
from tests.conftest import require_service
from tests.hardening.conftest import PASSWORD, train

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DONE = re.compile(r"Run (\d+) is now the active model\.|Another activation made run (\d+) the")
GAVE_WAY = re.compile(r"Another activation was in progress; run (\d+) is now active\.")


class Manager:
    """A browser of its own, signed in through the sign-in form: cookies, no JavaScript."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.post("/accounts/login/", "/accounts/login/", username=username, password=PASSWORD)

    def post(self, path: str, form_path: str, **fields) -> tuple[int, str]:
        """Open ``form_path``, then send its form with ``fields`` to ``path``."""
        page = self.opener.open(f"{self.base}{form_path}", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        request = urllib.request.Request(
            f"{self.base}{path}", data=body, headers={"Referer": f"{self.base}{form_path}"}
        )
        try:
            with self.opener.open(request, timeout=60) as response:  # follows the redirect
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def activate(self, run_id: int, barrier: threading.Barrier) -> tuple[int, str]:
        """Open the run page, wait for the others, tick the box and press the button."""
        page = self.opener.open(f"{self.base}/runs/{run_id}/", timeout=30).read().decode()
        assert 'id="activate-form"' in page, page[:1000]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "confirm": "yes"})
        request = urllib.request.Request(
            f"{self.base}/runs/{run_id}/activate/",
            data=body.encode(),
            headers={"Referer": f"{self.base}/runs/{run_id}/"},
        )
        barrier.wait(timeout=30)
        try:
            with self.opener.open(request, timeout=60) as response:  # follows the redirect
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")


def test_simultaneous_activations_take_turns_and_each_gets_a_page(live_server, make_user, caplog):
    require_service(connection.vendor == "postgresql", "PostgreSQL")
    call_command("generate_customers", count=600, seed=3, stdout=io.StringIO())
    run_a, run_b, run_c = train(k=3), train(k=5), train(k=4)
    managers = []
    for i in range(4):
        make_user(f"manager{i}", "Marketing managers")
        managers.append(Manager(live_server.url, f"manager{i}"))
    answers = []

    for _round in range(10):
        run_activate(run_id=run_c.id)  # every round starts from a third run
        barrier = threading.Barrier(4)

        def activate(i: int, barrier: threading.Barrier = barrier):
            target = (run_a, run_b)[i % 2]
            return target.id, *managers[i].activate(target.id, barrier)

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers += list(pool.map(activate, range(4)))
        active = TrainingRun.objects.filter(is_active=True)
        assert active.count() == 1 and active.get() in (run_a, run_b)
        segments = set(Cluster.objects.filter(run=active.get()).values_list("segment", flat=True))
        assert set(Segment.objects.filter(is_active=True).values_list("id", flat=True)) == segments

    statuses = [status for _target, status, _page in answers]
    assert statuses == [200] * 40, [(t, s, p[:300]) for t, s, p in answers if s != 200]
    gave_way = 0
    for target, _status, page in answers:
        done, other = DONE.search(page), GAVE_WAY.search(page)
        assert done or other, page[:2000]
        if done:
            assert int(done.group(1) or done.group(2)) == target
        else:
            gave_way += 1
            assert int(other.group(1)) in (run_a.id, run_b.id)
            assert f"Run {target} was not activated" in page
    # Four people pressing at once: the ones who waited were told so.
    assert gave_way > 0
    # ... because they took turns, not because a deadlock was caught and worded.
    assert not [r for r in caplog.records if "gave way" in r.getMessage()]
