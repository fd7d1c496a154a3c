"""Uploads waiting for confirmation: a confirm is used once, however often it is sent at
the same moment, and an upload whose request was killed does not stay on disk."""

from __future__ import annotations

import os
import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from customers.models import Customer, ImportRecord
from customers.uploads import IN_FLIGHT_MAX_SECONDS, upload_dir
from tests.hardening.live import fetch, gunicorn, multipart, signed_in_opener
from tests.hardening.test_concurrency import in_threads

HEADER = "customer_id,sex,age,annual_income,spending_score,purchase_frequency"


def customers_file(count: int) -> bytes:
    rows = [
        f"UP-{i:05d},female,{20 + i % 60},{10 + i % 90},{1 + i % 99},{i % 30}" for i in range(count)
    ]
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def upload(client: Client, content: bytes) -> dict:
    response = client.post("/customers/import/", {"file": SimpleUploadedFile("c.csv", content)})
    html = response.content.decode()
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    return {"token": token, "filename": "c.csv", "skip_invalid": "0", "columns": "{}"}


@pytest.mark.django_db(transaction=True)
def test_six_simultaneous_confirms_of_one_upload_import_it_once(manager):
    client = Client()
    client.force_login(manager)
    confirm = upload(client, customers_file(3_000))
    clients = []
    for _ in range(6):
        twin = Client()
        twin.cookies = client.cookies  # the same browser session, six clicks or tabs
        clients.append(twin)

    responses = in_threads(
        6, lambda i: clients[i].post("/customers/import/confirm/", confirm, follow=True)
    )

    pages = [r.content.decode() for r in responses]
    assert [r.status_code for r in responses] == [200] * 6
    assert ImportRecord.objects.count() == 1
    assert Customer.objects.count() == 3_000
    assert sum("Imported 3,000 new and 0 changed customers" in page for page in pages) == 1
    assert sum("That upload was already imported" in page for page in pages) == 5
    assert list(upload_dir().iterdir()) == []


@pytest.mark.django_db
def test_an_upload_whose_request_fails_is_not_left_on_disk(client, manager, monkeypatch):
    """A request stopped while it checks the file (gunicorn's worker timeout raises
    SystemExit in the worker) removes the file it stored."""
    from customers import views

    def stopped(*args, **kwargs):
        raise SystemExit(1)

    monkeypatch.setattr(views, "_first_look", stopped)
    client.force_login(manager)

    with pytest.raises(SystemExit):
        client.post("/customers/import/", {"file": SimpleUploadedFile("c.csv", b"x,y\n1,2\n")})

    assert list(upload_dir().iterdir()) == []


@pytest.mark.django_db
def test_files_of_killed_requests_are_removed_by_the_next_upload(client, manager):
    """A SIGKILL runs no cleanup: files still being checked or imported long after any
    request could have ended are removed, while uploads waiting for a confirm stay a day."""
    client.force_login(manager)
    folder = upload_dir()
    stale = time.time() - IN_FLIGHT_MAX_SECONDS - 60
    for name in ("a" * 32 + ".partial", "b" * 32 + ".importing", "c" * 32 + ".csv"):
        (folder / name).write_bytes(b"customer data")
        os.utime(folder / name, (stale, stale))

    client.post("/customers/import/", {"file": SimpleUploadedFile("c.csv", b"x,y\n1,2\n")})

    left = {p.name for p in folder.iterdir()}
    assert "a" * 32 + ".partial" not in left and "b" * 32 + ".importing" not in left
    assert "c" * 32 + ".csv" in left


def slow_file() -> bytes:
    """About 14 MB (under the page's limit) whose checking takes several seconds."""
    header = "customer_id," + ",".join(f"col{i}" for i in range(498))
    cells = ",".join(str(16 + i % 90) for i in range(498))
    rows = [f"C{r},{cells}" for r in range(9_000)]
    return ("\n".join([header, *rows]) + "\n").encode()


@pytest.mark.django_db(transaction=True)
def test_an_upload_killed_by_the_worker_timeout_is_not_left_on_disk(manager, tmp_path):
    """The real thing: gunicorn with a 2 s timeout aborts the worker checking the file."""
    with gunicorn(tmp_path / "gunicorn.log", "--timeout", "2") as base:
        opener, jar = signed_in_opener(manager)
        for _ in range(5):  # the first request loads the views; a busy machine may take long
            status, page = fetch(opener, f"{base}/customers/import/")
            if status == 200:
                break
        assert status == 200, (page[:500], (tmp_path / "gunicorn.log").read_text()[-3000:])
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        body, content_type = multipart(
            {"csrfmiddlewaretoken": csrf}, {"file": ("slow.csv", slow_file())}
        )

        status, answer = fetch(
            opener,
            f"{base}/customers/import/",
            body,
            {"Content-Type": content_type, "X-CSRFToken": csrf},
        )
        log = (tmp_path / "gunicorn.log").read_text()

    assert status in (None, 500, 502), answer[:300]
    assert "WORKER TIMEOUT" in log, log[-2000:]
    assert list(upload_dir().iterdir()) == []
