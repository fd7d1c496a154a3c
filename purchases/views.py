"""Purchase pages: the order-log import (upload, columns, dates, report, confirm, progress).

The same steps as the customer import (customers.views), with the same upload store: a
file the site reads fully goes straight to the report; a file without a header row, or
whose columns it does not recognise, first to the column step; dates that read two ways
to the date step. Confirming hands the file to a worker (purchases.import_jobs)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRefresh

from customers.csv_format import CsvFormatError
from customers.services import MAX_COLUMNS
from customers.uploads import (
    FILE_NAME_MAX_LENGTH,
    upload_claim,
    upload_discard,
    upload_first_step,
    upload_known,
    upload_path,
)
from customers.views import ALREADY_IMPORTED, EXPIRED
from purchases.clv_services import ClvError, clv_run_activate, clv_run_start
from purchases.dates import BY_KEY, AmbiguousDates
from purchases.forms import (
    ClvStartForm,
    DateFormatForm,
    OrderColumnsForm,
    OrderLogUploadForm,
    RfmStrategyForm,
)
from purchases.import_jobs import purchase_import_retry, purchase_import_start
from purchases.models import ClvRun, PurchaseImport, RfmStrategy
from purchases.recovery import purchase_jobs_reap
from purchases.rfm import GROUP_BY_KEY
from purchases.selectors import clv_run_context, rfm_strategy_instance
from purchases.services import (
    NoHeaderRow,
    TransactionOptions,
    read_log_preview,
    transactions_file_seen,
    transactions_import,
)
from purchases.transaction_format import FIELDS, MissingColumns, guess_columns

# Importing purchases creates customers: the same right as importing customers.
IMPORT_PERMISSIONS = ("customers.add_customer", "customers.change_customer")
TEMPLATE = "purchases/import.html"


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    """Step 1: upload an order log. Nothing is written until the report is confirmed."""
    form = OrderLogUploadForm(request.POST, request.FILES) if request.method == "POST" else None
    context = {"form": form or OrderLogUploadForm(), "recent": _recent()}
    if form is not None and form.is_valid():
        context.update(
            upload_first_step(
                request,
                form,
                lambda request, upload: _check(request, upload, choices={}),
                waiting=("can_import", "columns_form", "date_form"),
                refused=(CsvFormatError, ValueError),
            )  # fmt: skip
        )
    return render(request, TEMPLATE, context)


def _recent():
    return PurchaseImport.objects.select_related("created_by")[:5]


def _check(request: HttpRequest, upload: dict, *, choices: dict) -> dict:
    """The next step for a stored upload with the choices made so far: the column step,
    the date step, or the report of a dry run."""
    path = upload_path(request.session, upload["token"])
    if path is None:
        raise CsvFormatError(EXPIRED)
    base = {**upload, "choices": json.dumps(choices)}
    with open(path, "rb") as stream:
        try:
            report = transactions_import(stream=stream, options=_options(choices, dry_run=True))
        except (NoHeaderRow, MissingColumns):
            if choices.get("columns"):
                raise
            return {**base, "columns_form": _columns_form(stream)}
        except AmbiguousDates as ambiguous:
            candidates = [c.key for c in ambiguous.candidates]
            return {
                **base,
                "date_form": DateFormatForm(candidates=candidates),
                "date_examples": ambiguous.examples,
            }
        earlier = transactions_file_seen(stream=stream)
    can_import = (
        report.valid_rows > 0 and (upload["skip_invalid"] or not report.error_count) and not earlier
    )
    return {**base, "report": report, "earlier": earlier, "can_import": can_import}


def _options(choices: dict, **options) -> TransactionOptions:
    return TransactionOptions(
        column_names=tuple(choices.get("columns") or ()),
        header_row=bool(choices.get("header_row")),
        date_format=choices.get("date_format") or None,
        **options,
    )


def _columns_form(stream, data=None, initial_choices: dict | None = None) -> OrderColumnsForm:
    preview = read_log_preview(stream)
    header = preview.header_row
    if initial_choices and initial_choices.get("columns"):
        guesses, header = initial_choices["columns"], bool(initial_choices.get("header_row"))
    else:
        guesses = guess_columns(preview.rows, header)
    data_rows = preview.rows[1:] if header else preview.rows
    columns = []
    for index in range(preview.width):
        name = preview.rows[0][index] if header else f"Column {index + 1}"
        values = [r[index] for r in data_rows[:3] if index < len(r)]
        guess = guesses[index] if index < len(guesses) else ""
        columns.append((name or f"Column {index + 1}", "e.g. " + ", ".join(values), guess))
    return OrderColumnsForm(data, columns=columns, initial={"header_row": header})


def _upload_from(request: HttpRequest) -> dict:
    return {
        "token": request.POST.get("token", ""),
        "filename": request.POST.get("filename", "the file")[:FILE_NAME_MAX_LENGTH],
        "skip_invalid": request.POST.get("skip_invalid") == "1",
    }


def _choices(text: str) -> dict | None:
    """The choices a form carried back, or None when they are garbled."""
    try:
        choices = json.loads(text or "{}")
    except ValueError:
        return None
    if not isinstance(choices, dict):
        return None
    columns = choices.get("columns", [])
    if not isinstance(columns, list) or len(columns) > MAX_COLUMNS:
        return None
    if not all(isinstance(c, str) and (c in FIELDS or c == "") for c in columns):
        return None
    if choices.get("date_format", "") not in ("", *BY_KEY):
        return None
    if not isinstance(choices.get("header_row", False), bool):
        return None
    return choices


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_POST
def import_check(request: HttpRequest) -> HttpResponse:
    """Steps 1b and 1c: the user named the columns or chose the date format (or, from a
    report, asks to choose the columns again); check the file with those choices."""
    upload = _upload_from(request)
    choices = _choices(request.POST.get("choices", ""))
    path = upload_path(request.session, upload["token"])
    if path is None or choices is None:
        messages.error(
            request, EXPIRED if path is None else "The choices were garbled; upload again."
        )
        return redirect("purchases:import")
    try:
        with open(path, "rb") as stream:
            if request.POST.get("rechoose"):
                form = _columns_form(stream, None, choices)
                context = {**upload, "choices": json.dumps(choices), "columns_form": form}
            elif request.POST.get("step") == "columns":
                form = _columns_form(stream, request.POST)
                if form.is_valid():
                    choices = {
                        "columns": form.columns(),
                        "header_row": form.cleaned_data["header_row"],
                    }
                    context = _check(request, upload, choices=choices)
                else:
                    context = {**upload, "choices": json.dumps(choices), "columns_form": form}
            else:
                context = _date_step(request, upload, choices)
    except (CsvFormatError, ValueError) as problem:
        messages.error(request, f"{upload['filename']}: {problem}")
        return redirect("purchases:import")
    return render(request, TEMPLATE, {"form": OrderLogUploadForm(), **context})


def _date_step(request: HttpRequest, upload: dict, choices: dict) -> dict:
    candidates = [key for key in request.POST.getlist("candidates") if key in BY_KEY]
    form = DateFormatForm(request.POST, candidates=candidates)
    if not form.is_valid():
        return {**upload, "choices": json.dumps(choices), "date_form": form}
    return _check(
        request, upload, choices={**choices, "date_format": form.cleaned_data["date_format"]}
    )


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_POST
def import_confirm(request: HttpRequest) -> HttpResponse:
    """Step 2: hand the checked file to a worker, once however often it is confirmed."""
    upload = _upload_from(request)
    choices = _choices(request.POST.get("choices", ""))
    if not upload_known(request.session, upload["token"]) or choices is None:
        messages.error(request, EXPIRED)
        return redirect("purchases:import")
    path = upload_claim(request.session, upload["token"])
    if path is None:
        messages.error(request, ALREADY_IMPORTED)
        return redirect("purchases:import")
    job = purchase_import_start(
        path=path,
        file_name=upload["filename"],
        user=request.user,
        options={**choices, "skip_invalid": upload["skip_invalid"]},
    )
    upload_discard(request.session, upload["token"])
    return redirect("purchases:import_status", job_id=job.id)


@require_safe
@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_status(request: HttpRequest, job_id: int) -> HttpResponse:
    """The import's progress (htmx polls the status part until it has finished)."""
    purchase_jobs_reap()  # a user watching an import whose worker died sees it fail
    job = get_object_or_404(PurchaseImport, id=job_id)
    template = "purchases/import_status.html" + ("#import-status" if request.htmx else "")
    return render(request, template, {"job": job})


@require_POST
@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    """Import again the kept file of an import whose worker was lost."""
    job = get_object_or_404(PurchaseImport, id=job_id)
    retry = purchase_import_retry(job_id=job.id, user=request.user)
    if retry is None:
        messages.error(request, "This file cannot be imported again from here; upload it again.")
        return redirect("purchases:import_status", job_id=job.id)
    return redirect("purchases:import_status", job_id=retry.id)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("clustering.view_segment", raise_exception=True)
def rfm_strategy_edit(request: HttpRequest, group_key: str) -> HttpResponse:
    """Edit what to do about an RFM group (the same right as editing a segment's strategy);
    "Back to the default" forgets the edit."""
    group = GROUP_BY_KEY.get(group_key)
    if group is None:
        raise Http404("No such RFM group.")
    if not request.user.has_perm("clustering.change_segment"):
        return HttpResponse("You may not edit strategies.", status=403)
    if request.method == "POST" and request.POST.get("reset"):
        RfmStrategy.objects.filter(group=group.key).delete()
        messages.success(request, f"“{group.name}” has its default strategy again.")
        return redirect(f"{reverse('clustering:dashboard')}#rfm-groups")
    form = RfmStrategyForm(request.POST or None, instance=rfm_strategy_instance(group=group))
    if request.method == "POST" and form.is_valid():
        strategy = form.save(commit=False)
        strategy.updated_by = request.user
        strategy.save()
        messages.success(request, f"Saved the strategy of “{group.name}”.")
        return redirect(f"{reverse('clustering:dashboard')}#rfm-groups")
    return render(request, "purchases/rfm_strategy_edit.html", {"form": form, "group": group})


# --------------------------------------------------------------------------- CLV runs

VIEW_RUNS = "clustering.view_trainingrun"


@require_safe
@login_required
@permission_required(VIEW_RUNS, raise_exception=True)
def clv_runs(request: HttpRequest) -> HttpResponse:
    """The CLV fits, newest first, and the form that starts one."""
    purchase_jobs_reap()
    runs = ClvRun.objects.select_related("created_by")[:50]
    return render(request, "purchases/clv_runs.html", {"runs": runs, "form": ClvStartForm()})


@require_POST
@login_required
@permission_required("clustering.start_training", raise_exception=True)
def clv_run_start_view(request: HttpRequest) -> HttpResponse:
    form = ClvStartForm(request.POST)
    if not form.is_valid():
        runs = ClvRun.objects.select_related("created_by")[:50]
        return render(request, "purchases/clv_runs.html", {"runs": runs, "form": form})
    run = clv_run_start(
        calibration_end=form.cleaned_data["calibration_end"],
        horizon_days=form.cleaned_data["horizon_days"],
        user=request.user,
    )
    return redirect("purchases:clv_run", run_id=run.id)


@require_safe
@login_required
@permission_required(VIEW_RUNS, raise_exception=True)
def clv_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """A CLV fit: its progress (htmx polls until it has finished), parameters, the check on
    a later period and the cumulative chart."""
    purchase_jobs_reap()  # a fit whose worker died is shown failed, not running forever
    run = get_object_or_404(ClvRun, id=run_id)
    if request.htmx and not run.is_finished:
        return render(request, "purchases/clv_run.html#clv-status", {"run": run})
    if request.htmx:
        # Finished: the whole page, so the parameters and the chart appear.
        return HttpResponseClientRefresh()
    return render(request, "purchases/clv_run.html", clv_run_context(run=run))


@require_POST
@login_required
@permission_required("clustering.activate_run", raise_exception=True)
def clv_run_activate_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(ClvRun, id=run_id)
    try:
        clv_run_activate(run_id=run.id, user=request.user)
    except ClvError as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, f"CLV run {run.id} is now the active lifetime-value model.")
    return redirect("purchases:clv_run", run_id=run.id)
