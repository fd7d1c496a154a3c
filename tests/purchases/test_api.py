"""RFM values and lifetime value in the prediction and segment answers of the API."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from clustering.tokens import api_token_create
from customers.models import Customer
from purchases.models import CustomerRfm, CustomerValue
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db, marketer):
    call_command("generate_customers", count=400, seed=13, stdout=io.StringIO())
    call_command("generate_transactions", seed=13, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())
    call_command("clv", "--sync", stdout=io.StringIO())
    secret = api_token_create(user=marketer, name="CRM")[1]
    client = client_for(marketer)
    headers = {"Authorization": f"Bearer {secret}"}
    return lambda method, url, **kw: getattr(client, method)(url, headers=headers, **kw).json()


def customer_body(customer: Customer) -> dict:
    return {
        "customer_id": customer.customer_id,
        "age": customer.age,
        "annual_income": customer.annual_income,
        "spending_score": customer.spending_score,
        "purchase_frequency": customer.purchase_frequency,
    }


def test_a_prediction_for_a_known_customer_carries_its_rfm_and_lifetime_value(api):
    rfm = CustomerRfm.objects.select_related("customer").order_by("pk").first()
    value = CustomerValue.objects.get(customer_id=rfm.customer_id)

    answer = api("post", "/api/predict/", data=customer_body(rfm.customer),
                 content_type="application/json")  # fmt: skip

    purchases = answer["purchases"]
    assert purchases["scores"] == {"r": rfm.r_score, "f": rfm.f_score, "m": rfm.m_score}
    assert purchases["group"]["key"] == rfm.group
    assert purchases["recency_days"] == rfm.recency_days
    assert purchases["lifetime_value"]["p_alive"] == round(value.p_alive, 4)
    assert purchases["lifetime_value"]["expected_value"] == round(value.expected_value, 2)
    detail = api("get", f"/api/customers/{rfm.customer.customer_id}/")
    assert detail["purchases"] == purchases


def test_a_batch_answers_each_known_customer_and_null_for_an_unknown_one(api):
    known = Customer.objects.order_by("pk")[:3]
    stranger = {**customer_body(known[0]), "customer_id": "NEW-1"}
    body = {"customers": [*(customer_body(c) for c in known), stranger, {
        k: v for k, v in customer_body(known[1]).items() if k != "customer_id"}]}  # fmt: skip

    answer = api("post", "/api/predict/", data=body, content_type="application/json")

    first, second, third, new, anonymous = answer["predictions"]
    assert [p["purchases"]["group"]["key"] for p in (first, second, third)] == [
        CustomerRfm.objects.get(customer=c).group for c in known
    ]
    assert new["purchases"] is None
    assert "purchases" not in anonymous


def test_the_segments_answer_has_each_segment_s_rfm_groups_and_lifetime_value(api):
    answer = api("get", "/api/segments/")

    for segment in answer["segments"]:
        purchases = segment["purchases"]
        assert sum(purchases["rfm_groups"].values()) == segment["size"]
        value = purchases["lifetime_value"]
        assert value["customers"] == segment["size"]
        assert value["expected_value_mean"] == pytest.approx(
            value["expected_value_total"] / value["customers"], abs=0.01
        )
        assert 0 <= value["p_alive_mean"] <= 1 and 0 <= value["likely_lost_share"] <= 1
