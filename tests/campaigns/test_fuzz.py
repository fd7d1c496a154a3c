"""Whatever a campaign tool sends as outcomes, the API answers 200 or a JSON 400, never a
server error, and a refused body writes nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Outcome
from clustering.tokens import api_token_create
from tests.campaigns.helpers import make_campaign

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@pytest.fixture
def post(client, trained, marketer):
    campaign = make_campaign(trained)
    ids = list(campaign.members.values_list("customer__customer_id", flat=True)[:3])
    secret = api_token_create(user=marketer, name="fuzz")[1]

    def send(body: bytes):
        return client.post(
            f"/api/campaigns/{campaign.id}/outcomes/",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )

    send.ids = ids
    return send


@FUZZ
@given(data=st.data())
def test_any_outcomes_body_gets_200_or_a_json_400(post, data):
    outcome = st.fixed_dictionaries(
        {"customer_id": st.sampled_from(post.ids) | scalars},
        optional={"converted": values | st.sampled_from(["yes", "no", True]), "revenue": values},
    )
    body = data.draw(
        values | st.fixed_dictionaries({"outcomes": st.lists(outcome | values, max_size=4)})
    )
    before = Outcome.objects.count()

    response = post(json.dumps(body).encode())

    assert response.status_code in (200, 400), response.content[:300]
    assert response["Content-Type"] == "application/json"
    if response.status_code == 400:
        assert response.json()["error"]
        assert Outcome.objects.count() == before
