"""The OpenAPI 3.1 description of the JSON API, kept beside the views it describes."""

from __future__ import annotations

from clustering.bands import CONFIDENCE_BANDS
from customers.catalogue import CUSTOMER_ID_MAX_LENGTH, SEX_CHOICES, Catalogue, Feature


def feature_schema(feature: Feature) -> dict:
    """A numeric catalogue feature as a JSON schema property."""
    schema: dict = {
        "type": ["integer" if feature.whole else "number", "null"],
        "description": feature.help or feature.label,
    }
    if feature.minimum is not None:
        schema["minimum"] = feature.minimum
    if feature.maximum is not None:
        schema["maximum"] = feature.maximum
    return schema


def category_schema(feature: Feature, known: list[str] | None) -> dict:
    """A categorical attribute a run may use: text, one of the values the active model
    knows (``known``) or, without one, the catalogue's fixed choices."""
    values = known if known is not None else [code for code, _label in feature.choices]
    schema: dict = {
        "type": ["string", "null"],
        "description": f"{feature.help or feature.label} (a category; a model that uses it "
        "accepts only the values it was trained on).",
    }
    if values:
        schema["enum"] = [*values, None]
    return schema


def customer_schema(catalogue: Catalogue, categories: dict | None = None) -> dict:
    """One customer to place: every numeric catalogue feature, from the catalogue, and
    every categorical one a run may use (``categories``: the active model's known values)."""
    categories = categories or {}
    properties = {
        "customer_id": {
            "type": ["string", "null"],
            "maxLength": CUSTOMER_ID_MAX_LENGTH,
            "description": "Your own ID, echoed.",
        },
        **{f.key: feature_schema(f) for f in catalogue.clusterable()},
        **{
            f.key: category_schema(f, categories.get(f.key))
            for f in catalogue.clusterable_categorical()
        },
        "sex": {
            "type": ["string", "null"],
            "enum": [*(code for code, _label in SEX_CHOICES), None],
            "description": "For display only; never used to place a customer.",
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "The features the active model uses (GET /segments/ lists them as "
        "`features`) are required; the others are ignored.",
        "properties": properties,
    }


SEGMENT_REF = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "archetype": {"type": "string"},
    },
}
PREDICTION = {
    "type": "object",
    # Required, so that a single answer and a batch answer each match exactly one of the
    # alternatives of the 200 response's oneOf.
    "required": [
        "segment",
        "confidence",
        "band",
        "unusual",
        "runner_up",
        "explanation",
        "strategy",
    ],
    "properties": {
        "customer_id": {"type": "string", "description": "Echoed when the request had one."},
        "purchases": {
            "type": ["object", "null"],
            "description": "With a customer_id: that customer's RFM values, scores, group "
            "and lifetime value, as GET /customers/{customer_id}/ gives them (null without a "
            "purchase history).",
        },
        "segment": SEGMENT_REF,
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "Probability of the segment under equal-sized round "
            "clouds around each segment centre; 0.5 = halfway.",
        },
        "band": {"type": "string", "enum": [band.label for band in CONFIDENCE_BANDS]},
        "unusual": {
            "type": "boolean",
            "description": "True when the customer is far from every segment (farther from "
            "the nearest centre than 999 in 1,000 of the customers the model was trained on): "
            "the segment is only the nearest guess, whatever the confidence; check the values.",
        },
        "runner_up": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "probability": {"type": "number"},
            },
        },
        "explanation": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "feature": {"type": "string"},
                    "value": {"type": "number"},
                    "segment_centre": {"type": "number"},
                    "difference_sd": {"type": "number"},
                },
            },
        },
        "strategy": {
            "type": "object",
            "properties": {
                "description": {"type": "string"},
                "actions": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Messages by field; batch fields are named customers[i].field.",
        },
    },
}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {
        400: "Invalid input, by field",
        401: "Missing or wrong token",
        403: "The token's user lacks the permission",
        404: "Not found",
        409: "No model has been trained yet",
        503: "The active model's file is missing or altered; retrain or activate another run",
    }
    return {
        str(code): {"description": text[code], **_json({"$ref": "#/components/schemas/Error"})}
        for code in codes
    }


def openapi_document(server_url: str, catalogue: Catalogue, categories: dict | None = None) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Customer segmentation API",
            "version": "1.0.0",
            "description": "Place customers in the active model's segments and read the "
            "segments. Authenticate with 'Authorization: Bearer <token>' "
            "(tokens: admin, or `manage.py api_token USERNAME`).",
        },
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Customer": customer_schema(catalogue, categories),
                "Prediction": PREDICTION,
                "Error": ERROR,
            },
        },
        "paths": {**_paths(), **_campaign_paths()},
    }


def _campaign_paths() -> dict:
    from campaigns.openapi import campaign_paths  # the campaigns app builds on this module

    return campaign_paths(_json, _errors)


def _paths() -> dict:
    prediction = {
        "allOf": [
            {"$ref": "#/components/schemas/Prediction"},
            {
                "type": "object",
                "required": ["run_id"],
                "properties": {"run_id": {"type": "integer"}},
            },
        ]
    }
    batch_request = {
        "type": "object",
        "required": ["customers"],
        "additionalProperties": False,
        "properties": {
            "customers": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": {"$ref": "#/components/schemas/Customer"},
            }
        },
    }
    batch_response = {
        "type": "object",
        "required": ["run_id", "predictions"],
        "properties": {
            "run_id": {"type": "integer"},
            "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
        },
    }
    return {
        "/predict/": {
            "post": {
                "summary": "Segment, confidence and strategy for one customer or up to 1,000",
                "operationId": "predict",
                "requestBody": {
                    "required": True,
                    **_json({"oneOf": [{"$ref": "#/components/schemas/Customer"}, batch_request]}),
                },
                "responses": {
                    "200": {
                        "description": "The prediction(s)",
                        **_json({"oneOf": [prediction, batch_response]}),
                    },
                    **_errors(400, 401, 403, 409, 503),
                },
            }
        },
        "/segments/": {
            "get": {
                "summary": "The active model's segments with statistics and strategies",
                "operationId": "segments",
                "responses": {
                    "200": {"description": "Segments", **_json({"type": "object"})},
                    **_errors(401, 403, 409),
                },
            }
        },
        "/runs/{run_id}/": {
            "get": {
                "summary": "One training run: status, K, metrics, segments",
                "operationId": "run",
                "parameters": [
                    {
                        "name": "run_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
                "responses": {
                    "200": {"description": "The run", **_json({"type": "object"})},
                    **_errors(401, 403, 404),
                },
            }
        },
        "/customers/{customer_id}/": {
            "get": {
                "summary": "One customer: values, current segment and confidence, RFM values, "
                "scores, group and lifetime value",
                "description": "The segment, confidence and 'unusual' are those the active run "
                "gave the customer when it was trained, from the values they had then; "
                "POST /predict/ judges the values sent now, so after an edit the two may "
                "differ until the next retrain.",
                "operationId": "customer",
                "parameters": [
                    {
                        "name": "customer_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": CUSTOMER_ID_MAX_LENGTH},
                    }
                ],
                "responses": {
                    "200": {"description": "The customer", **_json({"type": "object"})},
                    **_errors(401, 403, 404),
                },
            }
        },
        "/ping/": {
            "get": {
                "summary": "Check a token",
                "operationId": "ping",
                "responses": {
                    "200": {"description": "The token works", **_json({"type": "object"})},
                    **_errors(401),
                },
            }
        },
    }
