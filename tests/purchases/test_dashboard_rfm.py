"""The dashboard shows the RFM groups once there is a purchase history."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from purchases.models import CustomerRfm
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_history(db):
    call_command("generate_customers", count=400, seed=5, stdout=io.StringIO())
    call_command("generate_transactions", seed=5, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())


def test_the_dashboard_lists_the_rfm_groups_with_sizes_and_strategies(with_history, marketer):
    page = client_for(marketer).get("/").content.decode()

    assert "RFM groups from the purchase history" in page
    champions = CustomerRfm.objects.filter(group="champions").count()
    assert '<th scope="row">Champions</th><td>' + f"{champions:,}" in page
    assert "Reward them: early access, exclusive previews" in page
    assert "Segments by RFM group" in page


def test_without_purchases_the_dashboard_has_no_rfm_section(db, marketer):
    call_command("generate_customers", count=300, seed=5, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())

    page = client_for(marketer).get("/").content.decode()

    assert "RFM groups" not in page


def test_the_api_answers_a_customer_with_segment_rfm_group_and_scores(with_history, marketer):
    from clustering.tokens import api_token_create

    secret = api_token_create(user=marketer, name="CRM")[1]
    customer = CustomerRfm.objects.select_related("customer").first()
    url = f"/api/customers/{customer.customer.customer_id}/"

    answer = client_for(marketer).get(url, headers={"Authorization": f"Bearer {secret}"}).json()

    assert answer["customer_id"] == customer.customer.customer_id
    assert answer["segment"]["name"] and 0 <= answer["segment"]["confidence"] <= 1
    assert answer["purchases"]["group"]["key"] == customer.group
    assert answer["purchases"]["scores"] == {
        "r": customer.r_score, "f": customer.f_score, "m": customer.m_score,
    }  # fmt: skip
    missing = client_for(marketer).get(
        "/api/customers/NOBODY/", headers={"Authorization": f"Bearer {secret}"}
    )
    assert missing.status_code == 404 and "NOBODY" in missing.json()["error"]
