"""A segment's history page (strategy versions, size and centre over runs, who joined and
left) and restoring an earlier strategy."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST, require_safe

from audit import selectors
from audit.models import StrategyVersion
from audit.services import RestoreRefused, strategy_restore
from campaigns.selectors import segment_campaign_summary, summary_text
from clustering.models import Segment, TrainingRun
from clustering.prediction import cache_clear as prediction_cache_clear

VIEW_SEGMENTS = "clustering.view_segment"


def _run_pair(request: HttpRequest, clusters) -> tuple[TrainingRun | None, TrainingRun | None]:
    """The runs to compare: ?from=&to=, else the segment's last two runs."""
    runs = {c.run_id: c.run for c in clusters}
    chosen = []
    for name in ("from", "to"):
        try:
            chosen.append(runs.get(int(request.GET.get(name, ""))))
        except ValueError:
            chosen.append(None)
    if chosen[0] and chosen[1]:
        return chosen[0], chosen[1]
    ordered = [c.run for c in clusters]
    return (ordered[-2], ordered[-1]) if len(ordered) >= 2 else (None, None)


@require_safe
@login_required
@permission_required(VIEW_SEGMENTS, raise_exception=True)
def segment_history(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, id=segment_id)
    timeline = selectors.segment_timeline(segment=segment)
    run_from, run_to = _run_pair(request, timeline["clusters"])
    changes, problem = None, ""
    if run_from and run_to and run_from.id != run_to.id:
        try:
            changes = selectors.segment_changes(segment=segment, run_from=run_from, run_to=run_to)
        except selectors.ChangesUnavailable as unavailable:
            problem = str(unavailable)
    summary = segment_campaign_summary(segment_id=segment.id)
    context = {
        "segment": segment,
        "versions": selectors.strategy_versions(segment=segment),
        "timeline": timeline,
        "run_from": run_from,
        "run_to": run_to,
        "changes": changes,
        "changes_problem": problem,
        "summary": summary_text(summary) if summary else "",
    }
    return render(request, "audit/segment_history.html", context)


@require_POST
@login_required
@permission_required("clustering.change_segment", raise_exception=True)
def version_restore(request: HttpRequest, segment_id: int, version_id: int) -> HttpResponse:
    version = get_object_or_404(StrategyVersion, id=version_id, segment_id=segment_id)
    try:
        strategy_restore(version=version, user=request.user)
    except RestoreRefused as refused:
        messages.error(request, str(refused))
    else:
        prediction_cache_clear()
        messages.success(request, f"Restored version {version.number} of the strategy.")
    return redirect("audit:segment_history", segment_id=segment_id)


@require_safe
@login_required
@permission_required("clustering.export_segment", raise_exception=True)
def segment_changes_csv(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, id=segment_id)
    run_from, run_to = _run_pair(request, selectors.segment_clusters(segment=segment))
    if run_from is None or run_to is None:
        messages.error(request, f"“{segment.name}” lived through fewer than two runs.")
        return redirect("audit:segment_history", segment_id=segment_id)
    try:
        selectors.segment_changes(segment=segment, run_from=run_from, run_to=run_to)
    except selectors.ChangesUnavailable as unavailable:
        messages.error(request, str(unavailable))
        return redirect("audit:segment_history", segment_id=segment_id)
    lines = selectors.segment_changes_lines(segment=segment, run_from=run_from, run_to=run_to)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    name = f"segment-{slugify(segment.name)}-changes-run-{run_from.id}-to-{run_to.id}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
