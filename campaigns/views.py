"""Campaign pages: the list, the form that freezes an audience, a page per campaign with
its lift and ROI, the exports, the outcomes upload and the planning calculator."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import planning, stats
from campaigns.forms import CampaignForm, OutcomesForm, PlanForm
from campaigns.models import Campaign
from campaigns.outcomes import outcomes_import_stream
from campaigns.selectors import campaign_report
from campaigns.services import (
    EXPORT_GROUPS,
    CampaignInvalid,
    campaign_create,
    campaign_draw_check,
    campaign_export_lines,
    campaign_strategy_lines,
)
from clustering.selectors import run_active, run_clusters
from customers.csv_format import CsvFormatError
from customers.models import Customer
from customers.selectors import catalogue_current

VIEW = "campaigns.view_campaign"


@require_safe
@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = Campaign.objects.select_related("created_by")[:200]
    return render(request, "campaigns/list.html", {"campaigns": campaigns})


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("campaigns.add_campaign", raise_exception=True)
def campaign_new(request: HttpRequest) -> HttpResponse:
    run = run_active(with_projection=False)
    form = CampaignForm(request.POST or None, run=run, catalogue=catalogue_current())
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaign_create(spec=form.spec(), user=request.user)
        except CampaignInvalid as problem:
            form.add_service_errors(problem.errors)
        else:
            messages.success(
                request,
                f"“{campaign.name}” is frozen: {campaign.treatment_size:,} customers to contact, "
                f"{campaign.control_size:,} held back as the control group.",
            )
            return redirect("campaigns:campaign_detail", campaign_id=campaign.id)
    status = 400 if request.method == "POST" else 200
    return render(request, "campaigns/new.html", {"form": form, "run": run}, status=status)


def _detail(request: HttpRequest, campaign: Campaign, **extra) -> HttpResponse:
    context = {
        "campaign": campaign,
        "report": campaign_report(campaign=campaign),
        "imports": campaign.outcome_imports.select_related("imported_by")[:20],
        "outcomes_form": OutcomesForm(),
        "methods": {"conversion": stats.METHOD_CONVERSION, "revenue": stats.METHOD_REVENUE},
        "groups": EXPORT_GROUPS,
        **extra,
    }
    return render(request, "campaigns/detail.html", context, status=extra.get("status", 200))


@require_safe
@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("created_by"), id=campaign_id)
    if request.GET.get("check") == "draw":
        return _detail(request, campaign, draw_reproduced=campaign_draw_check(campaign=campaign))
    return _detail(request, campaign)


@require_POST
@login_required
@permission_required("campaigns.import_outcomes", raise_exception=True)
def outcomes_upload(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("created_by"), id=campaign_id)
    form = OutcomesForm(request.POST, request.FILES)
    if not form.is_valid():
        return _detail(request, campaign, outcomes_form=form, status=400)
    upload = form.cleaned_data["file"]
    try:
        report = outcomes_import_stream(
            campaign=campaign, stream=upload.file, source=upload.name, user=request.user
        )
    except CsvFormatError as problem:
        form.add_error("file", f"{upload.name}: {problem}.")
        return _detail(request, campaign, outcomes_form=form, status=400)
    if report.written:
        messages.success(request, f"Counted {report.counted:,} outcomes from {upload.name}.")
    return _detail(request, campaign, outcome_report=report, status=200 if report.written else 400)


def _csv_response(lines, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_safe
@login_required
@permission_required("clustering.export_segment", raise_exception=True)
@permission_required(VIEW, raise_exception=True)
def campaign_export(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, id=campaign_id)
    group = request.GET.get("group") or "treatment"
    if group not in EXPORT_GROUPS:
        group = "treatment"
    lines = campaign_export_lines(campaign=campaign, group=group)
    return _csv_response(lines, f"campaign-{campaign.id}-{slugify(campaign.name)}-{group}.csv")


@require_safe
@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_strategies(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, id=campaign_id)
    lines = campaign_strategy_lines(campaign=campaign)
    return _csv_response(lines, f"campaign-{campaign.id}-{slugify(campaign.name)}-strategies.csv")


@require_safe
@login_required
@permission_required("clustering.view_segment", raise_exception=True)
def plan(request: HttpRequest) -> HttpResponse:
    """The planning calculator: computed on the server as the inputs change (htmx)."""
    run = run_active(with_projection=False)
    clusters = [c for c in run_clusters(run=run) if not c.is_noise] if run else []
    form = PlanForm(request.GET or None, clusters=clusters)
    result = None
    if form.is_bound and form.is_valid():
        if form.size_from_segment:
            form = form.with_segment_size()
        result = _plan_of(form)
    elif not form.is_bound:
        result = _plan_of(PlanForm({k: f.initial for k, f in form.fields.items()}, clusters=[]))
    context = {"form": form, "plan": result, "customers": Customer.objects.count()}
    template = "campaigns/plan.html#plan-result" if request.htmx else "campaigns/plan.html"
    return render(request, template, context)


def _plan_of(form: PlanForm) -> planning.Plan | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    return planning.plan(
        everyone_customers=data["everyone_customers"],
        everyone_conversion=data["everyone_conversion"] / 100,
        segment_name=form.segment_name(),
        segment_customers=data["segment_customers"],
        segment_conversion=data["segment_conversion"] / 100,
        order_value=data["order_value"],
        cost_per_contact=data["cost_per_contact"],
    )
