"""RFM group strategies are edited by marketers like a segment's."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from purchases.models import RfmStrategy
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db
EDIT = reverse("purchases:rfm_strategy_edit", args=["at_risk"])


@pytest.fixture
def with_history(db):
    call_command("generate_customers", count=300, seed=5, stdout=io.StringIO())
    call_command("generate_transactions", seed=5, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())


def test_a_marketer_rewrites_a_group_s_strategy_and_the_dashboard_shows_it(with_history, marketer):
    client = client_for(marketer)
    form = client.get(EDIT).content.decode()
    assert "Bought often a long time ago." in form  # the default, ready to edit

    response = client.post(
        EDIT, {"description": "Lapsed regulars.", "actions_text": "Call them\n\nSend a voucher"}
    )

    assert response.status_code == 302
    stored = RfmStrategy.objects.get(group="at_risk")
    assert (stored.description, stored.actions, stored.updated_by) == (
        "Lapsed regulars.", ["Call them", "Send a voucher"], marketer,
    )  # fmt: skip
    page = client.get("/").content.decode()
    assert "Lapsed regulars. Call them; Send a voucher." in page
    assert "Bought often a long time ago." not in page


def test_back_to_the_default_forgets_the_edit(with_history, marketer):
    client = client_for(marketer)
    client.post(EDIT, {"description": "Mine.", "actions_text": ""})

    client.post(EDIT, {"reset": "1"})

    assert not RfmStrategy.objects.exists()
    assert "Bought often a long time ago." in client.get("/").content.decode()


def test_someone_who_may_only_view_segments_may_not_edit(db, make_user):
    viewer = make_user("vic", perms=["clustering.view_segment"])
    client = client_for(viewer)

    assert client.get(EDIT).status_code == 403
    assert client.post(EDIT, {"description": "x", "actions_text": ""}).status_code == 403
    assert not RfmStrategy.objects.exists()
    assert client_for(make_user("nobody")).get(EDIT).status_code == 403


def test_an_overlong_strategy_is_refused_with_the_limit(marketer):
    client = client_for(marketer)

    page = client.post(EDIT, {"description": "x" * 5000, "actions_text": ""}).content.decode()

    assert "keep it within" in page
    assert not RfmStrategy.objects.exists()


def test_an_unknown_group_is_not_found(marketer):
    url = reverse("purchases:rfm_strategy_edit", args=["vips"])

    assert client_for(marketer).get(url).status_code == 404
