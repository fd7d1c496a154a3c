"""The JSON API for other systems (a CRM, a campaign tool), with bearer tokens.

Every answer is JSON, errors included: 400 names each invalid field, 401 a
missing or wrong token, 403 a missing permission, 409 a missing model.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from clustering import engine, selectors
from clustering.model_store import ModelFileError
from clustering.models import TrainingRun
from clustering.openapi import openapi_document
from clustering.prediction import (
    MODEL_UNAVAILABLE,
    ActiveModel,
    NoActiveModel,
    Prediction,
    category_problem,
    model_active,
    predict_many,
)
from clustering.services import training_runs_reap
from clustering.tokens import api_token_user
from customers.catalogue import CUSTOMER_ID_MAX_LENGTH, Feature
from customers.csv_format import Invalid, has_hidden_characters, parse_category
from customers.models import Customer
from customers.selectors import catalogue_current
from operations.history import predictions_record
from purchases.selectors import (
    customer_purchase_summary,
    purchase_summaries,
    segment_purchase_summaries,
)

MAX_BATCH = 1_000

logger = logging.getLogger(__name__)


def error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def api_view(method: str, permission: str | None = None) -> Callable:
    """Method check, bearer-token authentication and a permission check, all answered in
    JSON. CSRF does not apply: the API reads no cookies."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method != method:
                response = error(405, f"Use {method}.")
                response["Allow"] = method
                return response
            scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
            user, allowed = (
                api_token_user(secret.strip(), permission)
                if scheme.lower() == "bearer"
                else (None, False)
            )
            if user is None:
                response = error(401, "Send a valid token as 'Authorization: Bearer <token>'.")
                response["WWW-Authenticate"] = 'Bearer realm="segmentation"'
                return response
            if permission and not allowed:
                return error(403, f"This token's user lacks the permission {permission}.")
            request.user = user
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _prediction_json(prediction: Prediction) -> dict:
    return {
        "segment": {
            "id": prediction.segment.id,
            "name": prediction.segment.name,
            "archetype": prediction.segment.archetype,
        },
        "confidence": engine.confidence_rounded(prediction.confidence),
        "band": prediction.band,
        "unusual": prediction.unusual,
        "runner_up": {
            "id": prediction.runner_up.id,
            "name": prediction.runner_up.name,
            "probability": engine.confidence_rounded(prediction.runner_up_probability),
        },
        "explanation": [
            {
                "feature": item.feature,
                "value": item.value,
                "segment_centre": _rounded(item.centroid_value),
                "difference_sd": round(item.diff_sd, 3),
            }
            for item in prediction.explanation
        ],
        "strategy": {
            "description": prediction.segment.description,
            "actions": list(prediction.segment.actions),
        },
    }


class _HugeNumber:
    """A JSON number with more digits than any feature's value can have: kept as a marker
    so that the field is named (Python would refuse to convert it, failing the whole body)."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


# No feature's value needs more digits (Python refuses to convert more than 4,300 at all).
NUMBER_MAX_DIGITS = 30


def _parse_int(text: str) -> int | _HugeNumber:
    return _HugeNumber(text) if len(text) > NUMBER_MAX_DIGITS else int(text)


def _parse_customers(body: bytes) -> tuple[list | None, bool, dict]:
    """(customers, is_batch, errors) from the request body."""
    try:
        data = json.loads(body or b"null", parse_int=_parse_int)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: arrays or objects nested too deeply for the parser.
        return None, False, {"body": ["The body must be JSON."]}
    if isinstance(data, dict) and "customers" in data:
        customers = data["customers"]
        if not isinstance(customers, list) or not customers:
            return None, True, {"customers": ["Must be a non-empty list of customers."]}
        if len(customers) > MAX_BATCH:
            return None, True, {"customers": [f"At most {MAX_BATCH} customers per request."]}
        return customers, True, {}
    if isinstance(data, dict):
        return [data], False, {}
    return None, False, {"body": ['Send one customer as an object, or {"customers": [...]}.']}


SEX_VALUES = tuple(Customer.Sex.values)
TEXT_FIELDS = ("customer_id", "sex")


def _type_errors(customer: dict, known: set[str]) -> dict[str, list[str]]:
    """JSON types are checked before ranges: "35" or true is not an age."""
    errors = {}
    for field, value in customer.items():
        if field not in known:
            errors[field] = ["Unknown field."]
        elif isinstance(value, _HugeNumber):
            errors[field] = [f"A number of {value.digits:,} digits is not a valid value."]
        elif field in TEXT_FIELDS:
            continue
        elif field in _catalogue_keys(numeric=False):
            # A category is shown, never used to place a customer: text as the importer
            # takes it (bounded, no hidden characters), or null.
            if problem := _category_problem(value):
                errors[field] = [problem]
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            errors[field] = ["Must be a number."]
    customer_id = customer.get("customer_id")
    if customer_id is not None and "customer_id" not in errors:
        problem = _customer_id_problem(customer_id)
        if problem:
            errors["customer_id"] = [problem]
    if customer.get("sex") is not None and not isinstance(customer["sex"], str):
        errors["sex"] = [f"Must be one of {', '.join(SEX_VALUES)}."]
    return errors


def _customer_id_problem(value) -> str | None:
    if not isinstance(value, str) or len(value) > CUSTOMER_ID_MAX_LENGTH:
        return f"Must be text of at most {CUSTOMER_ID_MAX_LENGTH} characters."
    if has_hidden_characters(value):
        # Echoed back to the caller's systems: what the importer refuses, the API does too.
        return "The customer ID contains a control or text-direction character."
    return None


def _category_problem(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return "Must be text."
    try:
        parse_category(value)
    except Invalid as problem:
        return f"The value {problem.reason}."
    return None


def _number_error(feature: Feature, value: int | float) -> str | None:
    """The prediction form's rules and messages, without building a form per customer
    (that cost more than the prediction)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{feature.label} must be a number."
    if feature.whole and value != int(value):
        return f"{feature.label} must be a whole number."
    if feature.minimum is not None and value < feature.minimum:
        return f"{feature.label} must be at least {feature.minimum:g}."
    if feature.maximum is not None and value > feature.maximum:
        return f"{feature.label} must be at most {feature.maximum:g}."
    return None


def _check_customer(customer: dict, model: ActiveModel) -> tuple[dict, dict]:
    """(row of the run's features, errors by field) for one customer object.

    Numbers of other catalogue features are accepted and ignored, so a CRM can send the
    same record to every model."""
    known = {*TEXT_FIELDS, *model.features, *_catalogue_keys()}
    errors = _type_errors(customer, known)
    for feature in model.definitions:
        value = customer.get(feature.key)
        if feature.key in errors:
            continue
        if value is None:
            errors[feature.key] = [f"Enter the customer's {feature.label.lower()}."]
        elif not feature.is_numeric:
            if value not in {code for code, _label in feature.choices}:
                errors[feature.key] = [category_problem(feature, value)]
        elif problem := _number_error(feature, value):
            errors[feature.key] = [problem]
    if isinstance(customer.get("sex"), str) and customer["sex"] not in SEX_VALUES:
        errors["sex"] = [f"Must be one of {', '.join(SEX_VALUES)}."]
    row = {} if errors else {d.key: _row_value(d, customer[d.key]) for d in model.definitions}
    return row, errors


def _rounded(value):
    """A centre in original units; a categorical feature's is its most common category."""
    return value if isinstance(value, str) else round(value, 3)


def _row_value(feature: Feature, value):
    return float(value) if feature.is_numeric else value


_catalogue_cache: dict[str, tuple[float, dict]] = {}


def _catalogue_keys(*, numeric: bool | None = None) -> frozenset[str]:
    """The catalogue's keys (all, numeric or categorical ones), read at most once a second
    per process (the API is hot)."""
    now = time.monotonic()
    cached = _catalogue_cache.get("keys")
    if cached is None or cached[0] < now:
        catalogue = catalogue_current()
        keys = {
            None: frozenset(catalogue.keys),
            True: frozenset(f.key for f in catalogue.numeric()),
            False: frozenset(f.key for f in catalogue.categorical()),
        }
        _catalogue_cache["keys"] = cached = (now + 1.0, keys)
    return cached[1][numeric]


def _validate(customers: list, model: ActiveModel, is_batch: bool) -> tuple[list, dict]:
    rows, errors = [], {}
    for index, customer in enumerate(customers):
        prefix = f"customers[{index}]." if is_batch else ""
        if not isinstance(customer, dict):
            errors[prefix.rstrip(".") or "body"] = ["Each customer must be an object."]
            continue
        row, problems = _check_customer(customer, model)
        rows.append(row)
        errors.update({prefix + field: messages for field, messages in problems.items()})
    return rows, errors


@api_view("POST", "clustering.view_segment")
def predict(request: HttpRequest) -> JsonResponse:
    customers, is_batch, errors = _parse_customers(request.body)
    if errors:
        return error(400, "Invalid request.", errors=errors)
    try:
        model = model_active()
    except NoActiveModel:
        return error(409, "No segmentation has been trained yet.")
    except ModelFileError:
        logger.exception("the active model cannot be loaded")
        return error(503, MODEL_UNAVAILABLE)
    rows, errors = _validate(customers, model, is_batch)
    if errors:
        return error(400, "Invalid customer data.", errors=errors)
    answers = predict_many(rows, model=model)
    predictions_record(
        predictions=answers,
        rows=rows,
        user=request.user,
        channel="api",
        customer_refs=[customer.get("customer_id") for customer in customers],
    )
    predictions = [_prediction_json(p) for p in answers]
    ids = [c["customer_id"] for c in customers if c.get("customer_id") is not None]
    # A known customer's purchase history: RFM values, scores, group and lifetime value.
    histories = purchase_summaries(customer_ids=ids) if ids else {}
    for customer, prediction in zip(customers, predictions):
        if customer.get("customer_id") is not None:
            prediction["customer_id"] = customer["customer_id"]
            prediction["purchases"] = histories.get(customer["customer_id"])
    if is_batch:
        return JsonResponse({"run_id": model.run_id, "predictions": predictions})
    return JsonResponse({"run_id": model.run_id, **predictions[0]})


@api_view("GET", "clustering.view_segment")
def segments(request: HttpRequest) -> JsonResponse:
    run = selectors.run_active(with_projection=False)
    if run is None:
        return error(409, "No segmentation has been trained yet.")
    return JsonResponse(
        {
            "run_id": run.id,
            "features": run.features,
            "population_means": run.population_means,
            "segments": _with_purchases(selectors.run_summary(run=run)["clusters"], run),
        }
    )


def _with_purchases(segments: list[dict], run) -> list[dict]:
    """Each segment's customers by RFM group and lifetime value, with a purchase history."""
    summaries = segment_purchase_summaries(run=run)
    for segment in segments:
        if summaries:
            segment["purchases"] = summaries.get(segment["segment_id"])
    return segments


@api_view("GET", "clustering.view_trainingrun")
def run_detail(request: HttpRequest, run_id: int) -> JsonResponse:
    training_runs_reap()  # a system polling a run whose worker died sees it fail
    run = TrainingRun.objects.defer("projection").filter(id=run_id).first()
    if run is None:
        return error(404, f"There is no run {run_id}.")
    return JsonResponse(selectors.run_summary(run=run))


@api_view("GET", "clustering.view_segment")
def customer_detail(request: HttpRequest, customer_id: str) -> JsonResponse:
    """A customer's values, current segment and confidence, and purchase history figures."""
    customer = Customer.objects.filter(customer_id=customer_id).first()
    if customer is None:
        return error(404, f"There is no customer {customer_id!r}.")
    return JsonResponse(
        {
            **selectors.customer_values(customer=customer),
            "segment": selectors.customer_segment(customer=customer),
            "purchases": customer_purchase_summary(customer_pk=customer.pk),
        }
    )


@api_view("GET")
def ping(request: HttpRequest) -> JsonResponse:
    """The smallest authenticated answer: for monitoring, and the load test's baseline."""
    return JsonResponse({"ok": True, "user": request.user.get_username()})


@api_view("GET")
def openapi(request: HttpRequest) -> JsonResponse:
    document = openapi_document(
        request.build_absolute_uri("/api/"), catalogue_current(), _active_categories()
    )
    return JsonResponse(document)


def _active_categories() -> dict[str, list[str]]:
    """The categories of the active model's categorical features (the schema's enums)."""
    try:
        model = model_active()
    except (NoActiveModel, ModelFileError):
        return {}
    return {
        d.key: [code for code, _label in d.choices] for d in model.definitions if not d.is_numeric
    }
