"""Whatever a client sends, the site answers with a page or a JSON error, never a server error.

Hypothesis generates the input; each test states which answers are acceptable.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from clustering.models import Segment
from clustering.tokens import api_token_create
from tests.hardening.conftest import bearer

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIELDS = ("age", "annual_income", "spending_score", "purchase_frequency", "sex", "customer_id")

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
# Objects that look like customers reach the validation, not only the parser.
customer_like = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), json_values | scalars, max_size=8
)
# Customers with every field, mostly near or inside the valid ranges: these reach the model.
near_valid = st.fixed_dictionaries(
    {
        "age": st.integers(16, 110) | st.integers(0, 130) | scalars,
        "annual_income": st.floats(0, 100_000) | st.floats(-1, 200_000) | scalars,
        "spending_score": st.integers(1, 100) | st.integers(-5, 105) | scalars,
        "purchase_frequency": st.integers(0, 10_000) | st.integers(-1, 20_000) | scalars,
    },
    optional={
        "sex": st.sampled_from(["female", "male", "other", "unknown", "F", ""]),
        "customer_id": st.text(max_size=70),
    },
)
bodies = (
    json_values
    | customer_like
    | near_valid
    | st.fixed_dictionaries(
        {"customers": st.lists(near_valid | customer_like | json_values, max_size=6)}
    )
    | st.fixed_dictionaries({"customers": json_values})
)


@pytest.fixture
def api(client, trained, marketer):
    """POST a body to /api/predict/ with a valid token; return the response."""
    secret = api_token_create(user=marketer, name="fuzz")[1]

    def post(body: bytes, content_type: str = "application/json"):
        return client.post("/api/predict/", body, content_type=content_type, headers=bearer(secret))

    return post


def assert_api_answer(response) -> None:
    event(f"status {response.status_code}")  # see --hypothesis-show-statistics
    assert response.status_code in (200, 400, 409), (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if response.status_code == 400:
        assert body["errors"], body


@FUZZ
@given(body=bodies)
@example(body={"age": float("nan"), "annual_income": float("inf"), "spending_score": -0.0})
@example(body={"age": 10**4000 // 10**3990, "annual_income": 1e308, "spending_score": 5e-324})
@example(body={"customers": [{"age": 35.0, "annual_income": 50, "spending_score": 50}] * 3})
def test_any_json_body_gets_a_prediction_or_a_json_error(api, body):
    assert_api_answer(api(json.dumps(body, allow_nan=True).encode()))


valid_customers = st.fixed_dictionaries(
    {
        "age": st.integers(16, 110),
        "annual_income": st.floats(0, 100_000) | st.integers(0, 100_000),
        "spending_score": st.integers(1, 100),
        "purchase_frequency": st.integers(0, 10_000),
    },
    optional={
        "sex": st.sampled_from(["female", "male", "other", "unknown"]),
        # Any text but control, invisible format and line-separator characters (refused).
        "customer_id": st.text(
            st.characters(exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs")), max_size=64
        ),
    },
)


@FUZZ
@given(customers=st.lists(valid_customers, min_size=1, max_size=20))
def test_every_customer_inside_the_ranges_gets_a_sane_prediction(api, trained, customers):
    response = api(json.dumps({"customers": customers}).encode())

    assert response.status_code == 200, response.content[:300]
    body = response.json()
    segment_ids = set(trained.clusters.values_list("segment_id", flat=True))
    assert body["run_id"] == trained.id
    assert len(body["predictions"]) == len(customers)
    for customer, prediction in zip(customers, body["predictions"], strict=True):
        assert 0 <= prediction["confidence"] <= 1
        assert prediction["segment"]["id"] in segment_ids
        assert prediction["runner_up"]["id"] in segment_ids - {prediction["segment"]["id"]}
        assert prediction.get("customer_id") == customer.get("customer_id")


@FUZZ
@given(body=st.binary(max_size=400))
@example(body=b"[" * 50_000)
@example(body=b'{"age": ' + b"9" * 5000 + b"}")
@example(body='{"age": 30}'.encode("utf-16"))
@example(body=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
def test_any_bytes_get_a_prediction_or_a_json_error(api, body):
    assert_api_answer(api(body, content_type="application/octet-stream"))


def test_a_valid_customer_still_gets_a_prediction(api):
    """The fuzzing above would pass on an API that refused everything."""
    body = {"age": 30, "annual_income": 60, "spending_score": 50, "purchase_frequency": 20}

    response = api(json.dumps(body).encode())

    assert response.status_code == 200
    assert response.json()["segment"]["name"]


# --- Pages --------------------------------------------------------------------------------------

form_values = st.text(max_size=40) | st.sampled_from(["", " ", "1e400", "nan", "-0", "35.0", "١٢"])
prediction_forms = st.fixed_dictionaries(
    {name: form_values for name in FIELDS[:5]},
    optional={"csrfmiddlewaretoken": st.text(max_size=10), "extra": st.text(max_size=10)},
)


@pytest.fixture
def marketing_client(marketer) -> Client:
    client = Client()
    client.force_login(marketer)
    return client


@FUZZ
@given(form=prediction_forms, htmx=st.booleans())
@example(
    form={
        "age": "30",
        "annual_income": "60",
        "spending_score": "50",
        "purchase_frequency": "20",
        "sex": "female",
    },
    htmx=True,
)
def test_the_prediction_form_with_any_text_answers_with_a_page(
    trained, marketing_client, form, htmx
):
    headers = {"HX-Request": "true"} if htmx else {}

    response = marketing_client.post("/predict/", form, headers=headers)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="predict-panel"' in html
    assert ("<html" in html.lower()) is not htmx  # htmx gets the panel only


def test_the_prediction_form_places_a_valid_customer(trained, marketing_client):
    form = {"age": "30", "annual_income": "60", "spending_score": "50", "purchase_frequency": "20"}

    response = marketing_client.post("/predict/", form, headers={"HX-Request": "true"})

    assert 'class="segment-name"' in response.content.decode()


query_keys = st.sampled_from(["q", "sort", "band", "page", "a", "b", "cancel"]) | st.text(
    max_size=8
)
query_dicts = st.dictionaries(query_keys, st.text(max_size=40) | st.integers().map(str), max_size=5)
raw_queries = st.text(alphabet=st.characters(codec="ascii", exclude_characters="#"), max_size=80)


def _queries():
    return st.one_of(query_dicts.map(urlencode), raw_queries)


@FUZZ
@given(query=_queries())
@example(query="q=%00&sort=-income&band=very&page=99999999999999999999")
@example(query="page=-1&sort=__class__&band=%FF")
@example(query="q=DEMO-00001&page=last")
def test_the_members_page_with_any_query_answers_with_a_page(trained, marketing_client, query):
    segment = Segment.objects.filter(is_active=True).first()

    response = marketing_client.get(f"/segments/{segment.id}/?{query}")

    assert response.status_code == 200, (query, response.status_code)


@FUZZ
@given(query=_queries())
@example(query="a=1&b=99999999999999999999999999")
@example(query="a=-1&b=1_0")
@example(query="a=%00&b=1e3")
@example(query=f"a={'9' * 5000}")
def test_the_run_comparison_with_any_query_answers_with_a_page(trained, marketing_client, query):
    response = marketing_client.get(f"/runs/compare/?{query}")

    assert response.status_code == 200, (query, response.status_code)


def test_a_campaign_export_searched_for_a_nul_byte_is_an_empty_file(trained, marketing_client):
    segment = Segment.objects.filter(is_active=True).first()

    response = marketing_client.get(f"/segments/{segment.id}/export.csv?q=%00")

    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("customer_id,age,annual_income,spending_score")
    assert len(lines) == 1
