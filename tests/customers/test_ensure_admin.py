"""ensure_admin: the first admin account, with a password printed once."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def ensure_admin(*options: str) -> str:
    out = io.StringIO()
    call_command("ensure_admin", *options, stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    match = re.search(r"password: (\S+)", output)
    assert match, output
    return match.group(1)


def test_creates_a_superuser_whose_printed_password_signs_in():
    output = ensure_admin()

    user = authenticate(username="admin", password=printed_password(output))

    assert user is not None
    assert user.is_superuser and user.is_staff


def test_username_option_names_the_account():
    output = ensure_admin("--username", "boss")

    assert authenticate(username="boss", password=printed_password(output)) is not None


def test_each_installation_gets_its_own_password(django_user_model):
    first = printed_password(ensure_admin())
    django_user_model.objects.all().delete()

    second = printed_password(ensure_admin())

    assert first != second


def test_a_second_call_keeps_the_account_and_its_password():
    password = printed_password(ensure_admin())
    stored_hash = get_user_model().objects.get(username="admin").password

    output = ensure_admin()

    assert "password unchanged" in output
    assert "password:" not in output
    assert get_user_model().objects.get(username="admin").password == stored_hash
    assert authenticate(username="admin", password=password) is not None
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
