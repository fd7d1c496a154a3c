"""Pages of the marketing site. Thin: each view checks permissions, calls a
selector or service and renders a page or, for htmx, one partial of it."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from clustering import selectors
from clustering.algorithms import UNSEGMENTED
from clustering.forms import PredictForm, RetrainForm, SegmentForm
from clustering.model_store import ModelFileError
from clustering.models import Segment, TrainingRun
from clustering.prediction import (
    MODEL_UNAVAILABLE,
    NoActiveModel,
    feature_definitions,
    model_active,
    predict_many,
)
from clustering.prediction import cache_clear as prediction_cache_clear
from clustering.services import (
    ActivationInProgress,
    QueueUnavailable,
    TrainingError,
    run_activate,
    training_run_start,
    training_runs_reap,
)
from customers.selectors import catalogue_current
from operations.history import predictions_record
from purchases.selectors import rfm_overview

VIEW_SEGMENTS = "clustering.view_segment"

logger = logging.getLogger(__name__)


def _partial(request: HttpRequest, template: str, name: str) -> str:
    return f"{template}#{name}" if request.htmx else template


@require_safe
@login_required
@permission_required(VIEW_SEGMENTS, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    training_runs_reap()
    context = selectors.dashboard_context()
    run = context["run"]
    context["rfm"] = rfm_overview(run=run) if run else None
    definitions = feature_definitions(run.features, run.feature_info) if run else ()
    context["predict_form"] = PredictForm(definitions=definitions)
    context["retrain_form"] = RetrainForm(catalogue=catalogue_current())
    context["has_model"] = context["run"] is not None
    return render(request, "clustering/dashboard.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(VIEW_SEGMENTS, raise_exception=True)
def predict(request: HttpRequest) -> HttpResponse:
    """The prediction form: htmx swaps in the answer; without JavaScript it is a normal POST."""
    model_error = None
    try:
        model = model_active()
    except NoActiveModel:
        model = None
    except ModelFileError:
        logger.exception("the active model cannot be loaded")
        model, model_error = None, MODEL_UNAVAILABLE
    form = PredictForm(request.POST or None, definitions=model.definitions if model else ())
    context = {
        "predict_form": form,
        "prediction": None,
        "has_model": model is not None,
        "model_error": model_error,
        **selectors.METRIC_HELP,
    }
    if request.method == "POST" and model and form.is_valid():
        # The model read above answers: the cache may move on to a newer run meanwhile.
        context["prediction"] = predict_many([form.row()], model=model)[0]
        predictions_record(
            predictions=[context["prediction"]],
            rows=[form.row()],
            user=request.user,
            channel="page",
        )
    template = _partial(request, "clustering/predict.html", "predict-panel")
    # htmx swaps only successful responses: the panel with the message is its answer.
    status = 503 if model_error and not request.htmx else 200
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(VIEW_SEGMENTS, raise_exception=True)
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    """GET: the edit form in place of the card. POST: save and return the card."""
    segment = get_object_or_404(Segment, id=segment_id)
    if request.method == "GET" and request.GET.get("cancel"):
        if not request.htmx:
            return redirect("clustering:dashboard")
        return _card_after_edit(request, segment)
    if not request.user.has_perm("clustering.change_segment"):
        return HttpResponse("You may not edit segments.", status=403)
    if segment.archetype == UNSEGMENTED:
        # HDBSCAN's customers in no dense group: never a persona, never a strategy.
        return HttpResponse("Unsegmented customers are not a segment to name.", status=400)
    form = SegmentForm(request.POST or None, instance=segment)
    if request.method == "POST" and form.is_valid():
        segment = form.save(commit=False)
        segment.updated_by = request.user
        segment.save()
        prediction_cache_clear()
        if not request.htmx:
            messages.success(request, f"Saved “{segment.name}”.")
            return redirect("clustering:dashboard")
        return _card_after_edit(request, segment)
    return render(
        request,
        "clustering/segment_edit.html" if not request.htmx else "clustering/_segment_form.html",
        {"form": form, "segment": segment},
    )


def _card_after_edit(request: HttpRequest, segment: Segment) -> HttpResponse:
    # Focus goes back to the card's edit link, where the keyboard user left it.
    card = selectors.segment_card(segment=segment)
    return render(request, "clustering/_segment_card.html", {"card": card, "focus_edit": True})


@require_POST
@login_required
@permission_required("clustering.start_training", raise_exception=True)
def run_start(request: HttpRequest) -> HttpResponse:
    """Queue a retrain (or show the one already going); the panel then polls its progress."""
    form = RetrainForm(request.POST, catalogue=catalogue_current())
    if not form.is_valid():
        context = {"retrain_form": form, "training": selectors.run_in_flight()}
        # htmx swaps only successful responses; the form with its messages is the answer.
        status = 200 if request.htmx else 400
        template = _partial(request, "clustering/retrain.html", "retrain-panel")
        return render(request, template, context, status=status)
    try:
        run = training_run_start(user=request.user, params=form.params())
    except QueueUnavailable as problem:
        run = TrainingRun.objects.defer("projection").get(id=problem.run_id)
    if not request.htmx:
        if run.status == TrainingRun.Status.FAILED:
            messages.error(request, run.error)
        return redirect("clustering:run_detail", run_id=run.id)
    context = {"retrain_form": RetrainForm(catalogue=catalogue_current()), "training": run}
    return render(request, "clustering/retrain.html#retrain-panel", context)


@require_safe
@login_required
@permission_required("clustering.view_trainingrun", raise_exception=True)
def run_status(request: HttpRequest, run_id: int) -> HttpResponse:
    """The progress partial; polling stops once the run has finished.

    A run that finishes while a page watches it never reloads that page (an open form would
    be lost): the partial says a new model is active and offers a button to refresh."""
    training_runs_reap()
    run = get_object_or_404(TrainingRun.objects.defer("projection"), id=run_id)
    context = {"training": run}
    if run.is_finished and request.GET.get("was") in ("pending", "running"):
        context["just_finished"] = True
        context["refresh_url"] = (request.htmx and request.htmx.current_url_abs_path) or (
            reverse("clustering:dashboard")
        )
    return render(request, "clustering/retrain.html#run-status", context)


@require_safe
@login_required
@permission_required("clustering.view_trainingrun", raise_exception=True)
def run_list(request: HttpRequest) -> HttpResponse:
    training_runs_reap()
    return render(request, "clustering/runs.html", {"runs": selectors.runs_recent()})


@require_safe
@login_required
@permission_required("clustering.view_trainingrun", raise_exception=True)
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    training_runs_reap()
    run = get_object_or_404(TrainingRun, id=run_id)
    return render(request, "clustering/run_detail.html", selectors.run_detail_context(run=run))


@require_POST
@login_required
@permission_required("clustering.activate_run", raise_exception=True)
def run_activate_view(request: HttpRequest, run_id: int) -> HttpResponse:
    """Activate after the box is ticked; simultaneous activations take turns and each
    request gets a page saying what happened."""
    if request.POST.get("confirm") != "yes":
        messages.error(request, f"Tick the box to confirm that run {run_id} should be active.")
        return redirect("clustering:run_detail", run_id=run_id)
    try:
        run = run_activate(run_id=run_id, user=request.user, yield_to_others=True)
    except TrainingRun.DoesNotExist:
        messages.error(request, "That run does not exist.")
        return redirect("clustering:run_list")
    except TrainingError as problem:
        messages.error(request, str(problem))
    except (ActivationInProgress, DatabaseError) as problem:
        if not isinstance(problem, ActivationInProgress):  # a deadlock or lock timeout
            logger.warning("activation of run %s gave way: %s", run_id, problem)
        _activation_gave_way(request, run_id)
    else:
        messages.success(request, f"Run {run.id} is now the active model.")
    return redirect("clustering:run_detail", run_id=run_id)


def _activation_gave_way(request: HttpRequest, run_id: int) -> None:
    active = selectors.run_active(with_projection=False)
    if active and active.id == run_id:
        messages.success(request, f"Another activation made run {run_id} the active model.")
        return
    now = f"run {active.id} is now active" if active else "no run is active"
    messages.warning(
        request,
        f"Another activation was in progress; {now}. Run {run_id} was not activated: "
        "activate it again if you still want it.",
    )


@require_safe
@login_required
@permission_required("clustering.view_trainingrun", raise_exception=True)
def run_compare(request: HttpRequest) -> HttpResponse:
    context = selectors.run_comparison_context(request.GET.get("a"), request.GET.get("b"))
    return render(request, "clustering/run_compare.html", context)


@require_safe
@login_required
@permission_required(VIEW_SEGMENTS, raise_exception=True)
def segment_members(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, id=segment_id)
    context = selectors.segment_members_context(segment=segment, params=request.GET)
    return render(
        request, _partial(request, "clustering/segment_members.html", "members-table"), context
    )


@require_safe
@login_required
@permission_required("clustering.export_segment", raise_exception=True)
def segment_export(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, id=segment_id)
    cluster = selectors.segment_active_cluster(segment=segment)
    if cluster is None:
        messages.error(request, f"“{segment.name}” has no customers in the active model.")
        return redirect("clustering:dashboard")
    lines = selectors.segment_export_lines(cluster=cluster, params=request.GET)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"segment-{slugify(segment.name)}-run-{cluster.run_id}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
