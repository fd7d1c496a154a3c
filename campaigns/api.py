"""The campaign and segment-history endpoints of the JSON API (same tokens, same errors)."""

from __future__ import annotations

import io
import json

from django.http import HttpRequest, JsonResponse

from audit.selectors import ChangesUnavailable, segment_changes_ids
from campaigns.models import Campaign
from campaigns.outcomes import (
    OutcomeReport,
    outcomes_import,
    outcomes_import_stream,
    read_outcome_json,
)
from campaigns.selectors import campaign_report_json
from clustering.api import api_view, error
from clustering.models import Segment, TrainingRun
from customers.csv_format import CsvFormatError

MAX_OUTCOMES = 100_000


def _report_response(report: OutcomeReport) -> JsonResponse:
    if report.error_count:
        errors: dict[str, list[str]] = {}
        for e in report.errors:
            errors.setdefault(
                f"outcomes[{e.row}].{e.column}" if e.column else f"outcomes[{e.row}]", []
            ).append(e.reason)
        return error(
            400, "Invalid outcomes; nothing was imported.", errors=errors, report=report.as_json()
        )
    return JsonResponse(report.as_json())


def _csv_report_response(report: OutcomeReport) -> JsonResponse:
    if report.error_count:
        return error(400, "Invalid rows; nothing was imported.", report=report.as_json())
    return JsonResponse(report.as_json())


@api_view("POST", "campaigns.import_outcomes")
def outcomes(request: HttpRequest, campaign_id: int) -> JsonResponse:
    """``{"outcomes": [{"customer_id", "converted", "revenue"}, ...]}`` or a CSV body
    (Content-Type text/csv) as the import page takes it."""
    campaign = Campaign.objects.filter(id=campaign_id).first()
    if campaign is None:
        return error(404, f"There is no campaign {campaign_id}.")
    if request.content_type == "text/csv":
        try:
            report = outcomes_import_stream(
                campaign=campaign,
                stream=io.BytesIO(request.body),
                source="API (CSV)",
                user=request.user,
            )
        except CsvFormatError as problem:
            return error(400, f"The CSV cannot be read: {problem}.")
        return _csv_report_response(report)
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return error(400, "Invalid request.", errors={"body": ["The body must be JSON or CSV."]})
    items = data.get("outcomes") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        return error(400, "Invalid request.", errors={"outcomes": ["Must be a non-empty list."]})
    if len(items) > MAX_OUTCOMES:
        return error(
            400, "Invalid request.", errors={"outcomes": [f"At most {MAX_OUTCOMES:,} per request."]}
        )
    report = OutcomeReport(source="API")
    outcomes_import(
        campaign=campaign, rows=read_outcome_json(items, report), report=report, user=request.user
    )
    return _report_response(report)


@api_view("GET", "campaigns.view_campaign")
def campaign_detail(request: HttpRequest, campaign_id: int) -> JsonResponse:
    campaign = Campaign.objects.filter(id=campaign_id).first()
    if campaign is None:
        return error(404, f"There is no campaign {campaign_id}.")
    return JsonResponse(campaign_report_json(campaign=campaign))


def _run_parameter(request: HttpRequest, name: str) -> TrainingRun | None | str:
    text = request.GET.get(name, "")
    if not text.isdigit() or len(text) > 18:
        return f"Give ?{name}=RUN as a run id."
    run = TrainingRun.objects.defer("projection").filter(id=int(text)).first()
    return run if run is not None else f"There is no run {text}."


@api_view("GET", "clustering.view_segment")
def segment_changes(request: HttpRequest, segment_id: int) -> JsonResponse:
    """Who joined and who left a segment between two runs, for a marketing tool's sync."""
    segment = Segment.objects.filter(id=segment_id).first()
    if segment is None:
        return error(404, f"There is no segment {segment_id}.")
    runs = {name: _run_parameter(request, name) for name in ("from", "to")}
    problems = {name: [r] for name, r in runs.items() if isinstance(r, str)}
    if problems:
        return error(400, "Invalid request.", errors=problems)
    try:
        joined, left = segment_changes_ids(
            segment=segment, run_from=runs["from"], run_to=runs["to"]
        )
    except ChangesUnavailable as unavailable:
        return error(409, str(unavailable))
    return JsonResponse(
        {
            "segment_id": segment.id,
            "segment": segment.name,
            "from_run": runs["from"].id,
            "to_run": runs["to"].id,
            "joined": joined,
            "left": left,
            "joined_count": len(joined),
            "left_count": len(left),
        }
    )
