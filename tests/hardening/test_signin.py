"""Sign-in throttling (django-axes): both sign-in forms, per user name and real client
address, counted atomically in the database, working while the cache is down."""

from __future__ import annotations

import socket

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.hardening.conftest import PASSWORD
from tests.hardening.test_concurrency import in_threads

pytestmark = pytest.mark.django_db

SIGN_IN_FORMS = ["/accounts/login/", "/admin/login/"]
LOCKED = "Too many failed sign-in attempts"


@pytest.fixture
def staff(make_user):
    """Staff and in the managers' group: can sign in on both forms."""
    return make_user("sam", "Marketing managers", is_staff=True)


def sign_in(client: Client, username: str, password: str, url: str = "/accounts/login/", **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", SIGN_IN_FORMS)
def test_the_fifth_wrong_password_locks_the_form_and_even_the_right_one_is_refused(
    client, staff, settings, url
):
    assert settings.LOGIN_MAX_FAILURES == 5
    for _ in range(4):
        assert sign_in(client, "sam", "wrong", url).status_code == 200

    fifth = sign_in(client, "sam", "wrong", url)
    right = sign_in(client, "sam", PASSWORD, url)

    assert fifth.status_code == 429
    assert right.status_code == 429
    assert LOCKED in right.content.decode() and "Wait 15 minutes" in right.content.decode()
    assert not signed_in(client)


def test_a_lockout_on_one_form_holds_on_the_other(client, staff):
    for _ in range(5):
        sign_in(client, "sam", "wrong", "/admin/login/")

    assert sign_in(client, "sam", PASSWORD, "/accounts/login/").status_code == 429
    assert not signed_in(client)


def test_another_user_name_is_not_locked_out(client, marketer, manager):
    for _ in range(6):
        sign_in(client, "mia", "wrong")

    response = sign_in(client, "max", PASSWORD)

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_fewer_failures_than_the_limit_do_not_lock_out_and_success_resets_them(client, marketer):
    for _ in range(4):
        sign_in(client, "mia", "wrong")
    assert sign_in(client, "mia", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, "mia", "wrong")

    assert sign_in(client, "mia", PASSWORD).status_code == 302


def test_the_user_name_is_throttled_whatever_its_case(client, marketer):
    for _ in range(5):
        sign_in(client, "MIA", "wrong")

    assert sign_in(client, "mia", PASSWORD).status_code == 429


@pytest.mark.parametrize("spelling", [" mia", "mia ", "\uff4d\uff49\uff41"], ids=repr)
def test_a_locked_user_name_stays_locked_however_it_is_typed(client, marketer, spelling):
    """The sign-in form strips spaces and folds full-width letters before it checks."""
    for _ in range(5):
        sign_in(client, "mia", "wrong")

    assert sign_in(client, spelling, PASSWORD).status_code == 429
    assert client.get("/").status_code == 302  # still signed out


# --- The real client address behind the proxy -------------------------------------------------

PROXY = "10.0.0.2"


def through_proxy(client_address: str, sent: str = "") -> dict:
    """What one proxy passes on: the client's X-Forwarded-For with the client appended."""
    forwarded = f"{sent}, {client_address}" if sent else client_address
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": forwarded}


def test_behind_the_proxy_one_person_s_failures_do_not_lock_out_another(client, marketer, settings):
    """With everyone arriving from the proxy's address, keying on it would let anyone lock
    any account for everybody."""
    settings.SIGNIN_PROXY_COUNT = 1
    for _ in range(6):
        sign_in(client, "mia", "wrong", **through_proxy("198.51.100.7"))
    assert sign_in(client, "mia", PASSWORD, **through_proxy("198.51.100.7")).status_code == 429

    response = sign_in(Client(), "mia", PASSWORD, **through_proxy("203.0.113.5"))

    assert response.status_code == 302


def test_behind_the_proxy_a_forged_forwarded_for_does_not_escape_the_lockout(
    client, marketer, settings
):
    """The proxy appends the real address; what the client wrote before it is not read."""
    settings.SIGNIN_PROXY_COUNT = 1
    for i in range(5):
        sign_in(client, "mia", "wrong", **through_proxy("198.51.100.7", sent=f"192.0.2.{i}"))

    response = sign_in(client, "mia", PASSWORD, **through_proxy("198.51.100.7", sent="192.0.2.99"))

    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}


def test_without_a_proxy_setting_a_forwarded_for_header_is_ignored(client, marketer, settings):
    assert settings.SIGNIN_PROXY_COUNT == 0
    for i in range(5):
        sign_in(client, "mia", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")

    response = sign_in(client, "mia", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99")

    assert response.status_code == 429


# --- Counting --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_simultaneous_failures_are_each_counted(marketer, settings):
    """The count is one atomic increment in the database, not a read and a write: twelve
    failures at the same moment count twelve."""
    settings.AXES_FAILURE_LIMIT = 100

    responses = in_threads(12, lambda i: sign_in(Client(), "mia", "wrong"))

    assert [r.status_code for r in responses] == [200] * 12
    assert AccessAttempt.objects.get(username="mia").failures_since_start == 12


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_the_cache_down_sign_in_works_and_is_still_throttled(client, marketer, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    }
    assert sign_in(client, "mia", PASSWORD).status_code == 302
    client.logout()

    for _ in range(5):
        sign_in(client, "mia", "wrong")

    assert sign_in(client, "mia", PASSWORD).status_code == 429
