"""The JSON API as another system sees it: tokens, permissions, the OpenAPI description
and the answers of /api/predict/ checked against it."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import URLPattern

from campaigns import api_urls as campaign_api_urls
from clustering import api_urls
from clustering.models import ApiToken
from clustering.tokens import api_token_create
from customers.models import Customer
from tests.campaigns.helpers import make_campaign
from tests.clustering.helpers import running_run
from tests.hardening.conftest import bearer

pytestmark = pytest.mark.django_db

# Every endpoint with the method it answers.
ENDPOINTS = [
    ("post", "/api/predict/"),
    ("get", "/api/segments/"),
    ("get", "/api/runs/1/"),
    ("get", "/api/ping/"),
    ("get", "/api/openapi.json"),
]
NEEDS_PERMISSION = [e for e in ENDPOINTS if e[1].split("/")[2] in ("predict", "segments", "runs")]
ENDPOINT_IDS = [f"{m.upper()} {p}" for m, p in ENDPOINTS]

CUSTOMER = {"age": 38, "annual_income": 95, "spending_score": 60, "purchase_frequency": 28}


def call(client, method: str, path: str, secret: str | None = None, body=CUSTOMER, **extra):
    headers = bearer(secret) if secret is not None else {}
    if method == "post":
        return client.post(
            path, json.dumps(body), content_type="application/json", headers=headers, **extra
        )
    return client.get(path, headers=headers, **extra)


def predict(client, secret: str, body) -> object:
    return client.post(
        "/api/predict/", json.dumps(body), content_type="application/json", headers=bearer(secret)
    )


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


# --- Authentication and permissions -------------------------------------------------------------


@pytest.mark.parametrize("method, path", ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_call_without_a_token_is_refused_with_401_json(client, method, path):
    response = call(client, method, path)

    body = assert_json_error(response, 401)
    assert "Bearer" in body["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method, path", ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer seg_" + "x" * 43,  # the right shape, no such token
        "Bearer not-even-a-token",
        "Bearer ",
        "Basic bWlhOnBhc3N3b3Jk",
    ],
    ids=["unknown token", "malformed token", "empty token", "basic auth"],
)
def test_a_call_with_a_wrong_token_is_refused_with_401(client, token, method, path, authorization):
    response = client.generic(
        method.upper(),
        path,
        json.dumps(CUSTOMER),
        content_type="application/json",
        headers={"Authorization": authorization},
    )

    assert_json_error(response, 401)


@pytest.mark.parametrize("method, path", ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_revoked_token_is_refused_with_401(client, token, method, path):
    assert call(client, "get", "/api/ping/", token).status_code == 200
    ApiToken.objects.update(revoked=True)

    assert_json_error(call(client, method, path, token), 401)


def test_the_token_of_a_deactivated_user_is_refused_with_401(client, token, marketer):
    marketer.is_active = False
    marketer.save()

    assert_json_error(call(client, "get", "/api/ping/", token), 401)


@pytest.mark.parametrize(
    "method, path", NEEDS_PERMISSION, ids=[f"{m} {p}" for m, p in NEEDS_PERMISSION]
)
def test_the_token_of_a_user_without_permission_is_refused_with_403(
    client, outsider, trained, method, path
):
    secret = api_token_create(user=outsider, name="no rights")[1]
    path = path.replace("/1/", f"/{trained.id}/")

    body = assert_json_error(call(client, method, path, secret), 403)
    assert "permission" in body["error"]


def test_ping_and_the_description_need_only_a_valid_token(client, outsider):
    secret = api_token_create(user=outsider, name="monitoring")[1]

    assert call(client, "get", "/api/ping/", secret).json() == {"ok": True, "user": "olly"}
    assert call(client, "get", "/api/openapi.json", secret).status_code == 200


def test_a_wrong_method_is_405_json_naming_the_right_one(client, token):
    response = client.get("/api/predict/", headers=bearer(token))

    assert_json_error(response, 405)
    assert response["Allow"] == "POST"


def test_manage_py_api_token_prints_a_token_that_works(client, marketer):
    out, err = io.StringIO(), io.StringIO()

    call_command("api_token", "mia", "--name", "CRM sync", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    assert re.fullmatch(r"seg_[A-Za-z0-9_-]{40,}", secret), out.getvalue()
    assert "shown only now" in err.getvalue()
    assert call(client, "get", "/api/ping/", secret).json() == {"ok": True, "user": "mia"}
    stored = ApiToken.objects.get(name="CRM sync")
    assert secret not in (stored.key_hash, stored.prefix)


def test_manage_py_api_token_for_an_unknown_user_fails_naming_it(db):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("api_token", "nobody", stdout=io.StringIO(), stderr=io.StringIO())


# --- The OpenAPI description --------------------------------------------------------------------


@pytest.fixture
def document(client, token) -> dict:
    response = client.get("/api/openapi.json", headers=bearer(token))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(document: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_description_is_an_openapi_3_1_document(document):
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"][0]["url"].endswith("/api")
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    for path, item in document["paths"].items():
        assert path.startswith("/"), path
        for method, operation in item.items():
            assert method in {"get", "post", "put", "patch", "delete"}, (path, method)
            assert operation["operationId"] and operation["responses"], (path, method)
            for status in operation["responses"]:
                assert re.fullmatch(r"[1-5]\d\d", status), (path, status)
    for ref in _refs(document):
        _resolve(document, ref)  # every $ref points at something
    # Every schema is a valid JSON Schema 2020-12 (the dialect of OpenAPI 3.1).
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _urlconf_paths() -> dict[str, object]:
    paths = {}
    for pattern in api_urls.urlpatterns + campaign_api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        paths["/" + route] = pattern
    return paths


def test_the_documented_paths_are_the_urlconf_s_routes(document):
    routes = set(_urlconf_paths()) - {"/openapi.json"}  # the description does not list itself

    assert set(document["paths"]) == routes


def test_each_documented_operation_answers_its_method_and_refuses_others(
    client, token, trained, document
):
    campaign = make_campaign(trained)
    member = campaign.members.values_list("customer__customer_id", flat=True).first()
    outcomes = {"outcomes": [{"customer_id": member, "converted": True, "revenue": 10}]}
    for path, item in document["paths"].items():
        customer = Customer.objects.order_by("pk").first()
        url = "/api" + path.replace("{run_id}", str(trained.id)).replace(
            "{customer_id}", customer.customer_id
        )
        url = url.replace("{campaign_id}", str(campaign.id))
        url = url.replace("{segment_id}", str(campaign.strata[0]["segment_id"]))
        if "{segment_id}/changes/" in path:
            url += f"?from={trained.id}&to={trained.id}"
        for method in item:
            body = outcomes if path.endswith("/outcomes/") else CUSTOMER
            response = call(client, method, url, token, body=body)
            assert response.status_code == 200, (method, url, response.content[:200])
            other = "get" if method == "post" else "post"
            assert call(client, other, url, token).status_code == 405, (other, url)


def validator(document: dict, schema: dict) -> jsonschema.Draft202012Validator:
    """A validator for ``schema`` whose #/components/... references resolve in ``document``."""
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


def predict_schema(document: dict, status: str) -> dict:
    responses = document["paths"]["/predict/"]["post"]["responses"]
    return responses[status]["content"]["application/json"]["schema"]


def test_a_single_prediction_matches_the_documented_response(client, token, trained, document):
    response = predict(client, token, {**CUSTOMER, "customer_id": "0042", "sex": "female"})

    assert response.status_code == 200
    body = response.json()
    validator(document, predict_schema(document, "200")).validate(body)
    assert body["run_id"] == trained.id
    assert body["customer_id"] == "0042"
    assert 0 <= body["confidence"] <= 1


def test_a_batch_prediction_matches_the_documented_response(client, token, trained, document):
    customers = [{**CUSTOMER, "customer_id": f"C{i}", "age": 20 + i} for i in range(5)]

    response = predict(client, token, {"customers": customers})

    assert response.status_code == 200
    body = response.json()
    validator(document, predict_schema(document, "200")).validate(body)
    assert [p["customer_id"] for p in body["predictions"]] == [c["customer_id"] for c in customers]


def test_the_documented_request_schemas_accept_what_the_api_accepts(document):
    body = document["paths"]["/predict/"]["post"]["requestBody"]
    check = validator(document, body["content"]["application/json"]["schema"])

    check.validate(CUSTOMER)
    check.validate({"customers": [CUSTOMER, {**CUSTOMER, "sex": None, "customer_id": "x"}]})
    assert not check.is_valid({**CUSTOMER, "age": 200})
    assert not check.is_valid({"customers": []})


def test_an_error_answer_matches_the_documented_error(client, token, trained, document):
    response = predict(client, token, {**CUSTOMER, "age": "old"})

    assert response.status_code == 400
    validator(document, predict_schema(document, "400")).validate(response.json())


# --- Batches and validation ---------------------------------------------------------------------


def test_a_batch_of_1000_customers_is_answered(client, token, trained):
    customers = [
        {**CUSTOMER, "age": 16 + i % 90, "spending_score": 1 + i % 100} for i in range(1000)
    ]

    response = predict(client, token, {"customers": customers})

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1000


def test_a_batch_of_1001_customers_is_refused_with_400(client, token, trained):
    response = predict(client, token, {"customers": [CUSTOMER] * 1001})

    body = assert_json_error(response, 400)
    assert body["errors"] == {"customers": ["At most 1000 customers per request."]}


def test_each_invalid_field_of_a_batch_is_named_with_its_position(client, token, trained):
    customers = [dict(CUSTOMER) for _ in range(5)]
    customers[1]["spending_score"] = 500
    del customers[2]["annual_income"]
    customers[3]["age"] = "thirty"
    customers[4]["favourite_colour"] = "blue"

    response = predict(client, token, {"customers": customers})

    errors = assert_json_error(response, 400)["errors"]
    assert set(errors) == {
        "customers[1].spending_score",
        "customers[2].annual_income",
        "customers[3].age",
        "customers[4].favourite_colour",
    }
    assert errors["customers[3].age"] == ["Must be a number."]
    assert errors["customers[1].spending_score"] == ["Spending score must be at most 100."]
    assert errors["customers[4].favourite_colour"] == ["Unknown field."]


def test_each_invalid_field_of_one_customer_is_named(client, token, trained):
    response = predict(client, token, {"age": True, "annual_income": -1, "sex": "robot"})

    errors = assert_json_error(response, 400)["errors"]
    assert set(errors) == {
        "age",
        "annual_income",
        "sex",
        "spending_score",
        "purchase_frequency",
    }


@pytest.mark.parametrize(
    "body, field",
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'"text"', "body"),
        (b'{"customers": {}}', "customers"),
        (b'{"customers": []}', "customers"),
        (b'{"customers": [1]}', "customers[0]"),
        (b"[" * 100_000, "body"),  # nested too deeply for the JSON parser
    ],
    ids=[
        "not json",
        "a list",
        "a string",
        "customers not a list",
        "empty batch",
        "not an object",
        "deep nesting",
    ],
)
def test_a_malformed_body_is_400_naming_what_is_wrong(client, token, trained, body, field):
    response = client.post(
        "/api/predict/", body, content_type="application/json", headers=bearer(token)
    )

    assert field in assert_json_error(response, 400)["errors"]


def test_without_a_trained_model_a_prediction_is_409(client, token):
    assert_json_error(predict(client, token, CUSTOMER), 409)


def test_a_system_polling_a_run_whose_worker_died_sees_it_fail(client, token, settings):
    settings.CLUSTERING_HEARTBEAT_TIMEOUT = 60
    run = running_run(silent_for=timedelta(minutes=5))

    response = client.get(f"/api/runs/{run.id}/", headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert "stopped responding" in response.json()["error"]


def test_the_api_flags_a_customer_far_from_every_segment(client, token, trained):
    far = {**CUSTOMER, "annual_income": 100_000}

    answers = predict(client, token, {"customers": [CUSTOMER, far]}).json()["predictions"]

    assert [answer["unusual"] for answer in answers] == [False, True]
