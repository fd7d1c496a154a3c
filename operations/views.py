"""The operations page (managers), schedules, prediction history, notification settings."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from clustering.services import QueueUnavailable
from customers.selectors import catalogue_current
from operations import selectors
from operations.forms import PreferenceForm, ScheduleForm
from operations.history import predictions_csv_lines, predictions_filtered, predictions_prune
from operations.models import NotificationPreference, Schedule, ScheduledRun
from operations.schedules import ScheduleError, schedule_delete, schedule_fire, schedule_save
from operations.status import model_files_prune

MANAGE = "operations.manage_operations"


@require_safe
@login_required
@permission_required(MANAGE, raise_exception=True)
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "operations/overview.html", selectors.overview_context())


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(MANAGE, raise_exception=True)
def schedule_edit(request: HttpRequest, schedule_id: int | None = None) -> HttpResponse:
    schedule = get_object_or_404(Schedule, id=schedule_id) if schedule_id else Schedule()
    form = ScheduleForm(request.POST or None, instance=schedule, catalogue=catalogue_current())
    if request.method == "POST" and form.is_valid():
        try:
            schedule = schedule_save(schedule=form.save(commit=False), user=request.user)
        except ScheduleError as problem:
            form.add_error(None, str(problem))
        else:
            messages.success(request, f"Saved the schedule “{schedule.name}”.")
            return redirect("operations:overview")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "operations/schedule_edit.html",
        {"form": form, "schedule": schedule},
        status=status,
    )


@require_POST
@login_required
@permission_required(MANAGE, raise_exception=True)
def schedule_remove(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, id=schedule_id)
    schedule_delete(schedule=schedule)
    messages.success(request, f"Deleted the schedule “{schedule.name}”.")
    return redirect("operations:overview")


@require_POST
@login_required
@permission_required(MANAGE, raise_exception=True)
def schedule_run_now(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """Start the schedule's retrain now, with its options and activation rule."""
    schedule = get_object_or_404(Schedule, id=schedule_id)
    try:
        link = schedule_fire(
            schedule_id=schedule.id, reason=ScheduledRun.Reason.MANUAL, user=request.user
        )
    except QueueUnavailable:
        messages.error(
            request, "The training queue is unavailable, so the run was not started. Try again."
        )
        return redirect("operations:overview")
    if link.outcome == ScheduledRun.Outcome.SKIPPED:
        messages.warning(request, link.detail)
        return redirect("operations:overview")
    messages.success(request, f"Started run {link.run_id} of “{schedule.name}”.")
    return redirect("clustering:run_detail", run_id=link.run_id)


@require_POST
@login_required
@permission_required(MANAGE, raise_exception=True)
def prune(request: HttpRequest) -> HttpResponse:
    predictions = predictions_prune()
    files, size = model_files_prune()
    messages.success(
        request,
        f"Deleted {predictions:,} prediction(s) past the retention period and {files} model "
        f"file(s) no run can use again ({size / 2**20:.1f} MB).",
    )
    return redirect("operations:overview")


@require_safe
@login_required
@permission_required("clustering.view_segment", raise_exception=True)
def predictions(request: HttpRequest) -> HttpResponse:
    records, filters = predictions_filtered(user=request.user, params=request.GET)
    page = Paginator(records, 50).get_page(request.GET.get("page"))
    context = {"page": page, "filters": filters, "today": timezone.localdate()}
    template = "operations/predictions.html"
    if request.htmx:
        template += "#prediction-table"
    return render(request, template, context)


@require_safe
@login_required
@permission_required("operations.view_all_predictions", raise_exception=True)
def predictions_export(request: HttpRequest) -> HttpResponse:
    records, _filters = predictions_filtered(user=request.user, params=request.GET)
    response = StreamingHttpResponse(
        predictions_csv_lines(records), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="predictions.csv"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("clustering.view_segment", raise_exception=True)
def preferences(request: HttpRequest) -> HttpResponse:
    preference, _ = NotificationPreference.objects.get_or_create(user=request.user)
    form = PreferenceForm(request.POST or None, instance=preference)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved your notification settings.")
        return redirect("operations:preferences")
    return render(request, "operations/preferences.html", {"form": form})
