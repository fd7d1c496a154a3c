"""What people and API callers see when a request goes wrong."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from segmentation_site.errors import server_error
from tests.hardening.conftest import bearer

pytestmark = pytest.mark.django_db


def test_a_user_without_permission_gets_the_site_s_page_saying_what_to_ask_for(client, outsider):
    client.force_login(outsider)

    response = client.get("/")

    page = response.content.decode()
    assert response.status_code == 403
    assert "You do not have permission for this page." in page
    assert "Ask an administrator to add you" in page
    assert "Sign out olly" in page  # the site's header, not a bare error
    assert "Back to the segments" not in page  # it would only lead to this page again


def test_a_marketer_refused_the_import_page_is_offered_the_way_back(client, marketer):
    client.force_login(marketer)

    page = client.get("/customers/import/").content.decode()

    assert '"Marketing managers" can also' in page
    assert '<a href="/">Back to the segments</a>' in page


def test_a_missing_page_gets_the_site_s_page(client, outsider):
    client.force_login(outsider)

    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert "There is no such page." in response.content.decode()


def test_an_unknown_api_address_answers_json(client, token):
    response = client.get("/api/runs/-1/", headers=bearer(token))

    assert response.status_code == 404
    assert response.json() == {"error": "There is no such page."}


def test_an_api_body_above_the_size_limit_answers_json(client, token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"customers": [{"age": 30, "annual_income": 50}] * 100})

    response = client.post(
        "/api/predict/", body, content_type="application/json", headers=bearer(token)
    )

    assert response.status_code == 400
    assert "too large" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/", "Something went wrong on our side"), ("/api/predict/", '{"error": "Something')],
)
def test_a_server_error_is_explained_in_the_site_s_page_or_in_json(path, expected):
    response = server_error(RequestFactory().get(path))

    assert response.status_code == 500
    assert expected in response.content.decode()
