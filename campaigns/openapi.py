"""The campaign and segment-history paths of the OpenAPI description (clustering.openapi
adds them to its document; its helpers are passed in to keep the imports one-way)."""

from __future__ import annotations

from collections.abc import Callable

from campaigns.api import MAX_OUTCOMES

OUTCOME = {
    "type": "object",
    "required": ["customer_id", "converted"],
    "properties": {
        "customer_id": {"type": "string", "description": "Your customer ID."},
        "converted": {
            "type": ["boolean", "string"],
            "description": "true/false, or yes/no, 1/0 as text.",
        },
        "revenue": {
            "type": ["number", "string", "null"],
            "description": "Revenue from this customer; blank or null is 0; negative is a refund.",
        },
    },
    "description": "Other fields are ignored and listed in the answer's ignored_columns.",
}
OUTCOME_REPORT = {
    "type": "object",
    "properties": {
        "rows_read": {"type": "integer"},
        "counted": {"type": "integer"},
        "written": {"type": "boolean"},
        "ignored_columns": {"type": "array", "items": {"type": "string"}},
        "members_without_row": {
            "type": "integer",
            "description": "Campaign customers without an outcome: counted as not converted.",
        },
        "outsiders": {
            "type": "object",
            "description": "Customers outside the campaign: reported, never counted.",
        },
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def _id(name: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }


def campaign_paths(json_content: Callable[[dict], dict], errors: Callable[..., dict]) -> dict:
    run_query = [
        {"name": name, "in": "query", "required": True, "schema": {"type": "integer", "minimum": 1}}
        for name in ("from", "to")
    ]
    return {
        "/campaigns/{campaign_id}/": {
            "get": {
                "summary": "A campaign's groups, lift with 95 % intervals, incremental revenue, "
                "cost and ROI, per segment and in total (as `campaign report --json`)",
                "operationId": "campaign",
                "parameters": [_id("campaign_id")],
                "responses": {
                    "200": {"description": "The report", **json_content({"type": "object"})},
                    **errors(401, 403, 404),
                },
            }
        },
        "/campaigns/{campaign_id}/outcomes/": {
            "post": {
                "summary": "Import a campaign's outcomes (replaces earlier ones; all or nothing)",
                "operationId": "campaign_outcomes",
                "parameters": [_id("campaign_id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["outcomes"],
                                "properties": {
                                    "outcomes": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": MAX_OUTCOMES,
                                        "items": OUTCOME,
                                    }
                                },
                            }
                        },
                        "text/csv": {
                            "schema": {
                                "type": "string",
                                "description": "customer_id,converted,revenue with a header row",
                            }
                        },
                    },
                },
                "responses": {
                    "200": {"description": "Imported", **json_content(OUTCOME_REPORT)},
                    **errors(400, 401, 403, 404),
                },
            }
        },
        "/segments/{segment_id}/changes/": {
            "get": {
                "summary": "Customer IDs that joined and left a segment between two runs",
                "operationId": "segment_changes",
                "parameters": [_id("segment_id"), *run_query],
                "responses": {
                    "200": {
                        "description": "joined and left: lists of customer IDs",
                        **json_content(
                            {
                                "type": "object",
                                "properties": {
                                    "joined": {"type": "array", "items": {"type": "string"}},
                                    "left": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        ),
                    },
                    **errors(400, 401, 403, 404),
                    "409": {
                        "description": "A run has not succeeded, or its assignments were pruned",
                        **json_content({"$ref": "#/components/schemas/Error"}),
                    },
                },
            }
        },
    }
