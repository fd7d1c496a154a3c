from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from customers.csv_format import OPTIONAL_FIELDS, REQUIRED_FIELDS, CsvFormatError, UnclearColumns
from customers.forms import ColumnMapForm, ImportUploadForm
from customers.models import field_label
from customers.services import customers_import_file
from customers.uploads import upload_discard, upload_path, upload_store

IMPORT_PERMISSIONS = ("customers.add_customer", "customers.change_customer")
EXPIRED = "That upload has expired or was already imported; upload again."


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    """Step 1: upload a file and see the validation report; nothing is written yet."""
    # Bound on every POST: a POST carrying only the file (CSRF token in a header) is still a POST.
    form = (
        ImportUploadForm(request.POST, request.FILES)
        if request.method == "POST"
        else ImportUploadForm()
    )
    context = {"form": form}
    if request.method == "POST" and form.is_valid():
        upload = {
            "token": upload_store(request.session, form.cleaned_data["file"]),
            "filename": form.cleaned_data["file"].name,
            "skip_invalid": form.cleaned_data["skip_invalid"],
        }
        try:
            context.update(_check(request, upload))
        except CsvFormatError as problem:
            form.add_error("file", str(problem))
    return render(request, "customers/import.html", context)


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_http_methods(["POST"])
def import_map(request: HttpRequest) -> HttpResponse:
    """Step 1b: the user said which column holds which field; check the file again."""
    upload = {
        "token": request.POST.get("token", ""),
        "filename": request.POST.get("filename", "the file"),
        "skip_invalid": request.POST.get("skip_invalid") == "1",
    }
    path = upload_path(request.session, upload["token"])
    if path is None:
        messages.error(request, EXPIRED)
        return redirect("customers:import")
    try:
        if request.POST.get("rechoose"):
            # Back from a report to the column choices it was made with.
            previous = _column_map(request.POST.get("columns", "")) or []
            chosen = {field: index for index, field in enumerate(previous) if field}
            context = {**upload, "map_form": _map_form(path, initial=chosen)}
        else:
            context = _check(request, upload, answers=request.POST)
    except CsvFormatError as problem:
        messages.error(request, str(problem))
        return redirect("customers:import")
    return render(request, "customers/import.html", {"form": ImportUploadForm(), **context})


def _check(request: HttpRequest, upload: dict, answers=None) -> dict:
    """Validate a stored upload (with the user's column choices, if any): the page's context.

    Raises CsvFormatError, after discarding the file, when it cannot be imported at all.
    """
    token = upload["token"]
    path = upload_path(request.session, token)
    column_map = None
    if answers is not None:
        map_form = _map_form(path, answers)
        if not map_form.is_valid():
            return {**upload, "map_form": map_form}
        column_map = map_form.column_map()
    try:
        report = customers_import_file(path=path, dry_run=True, column_map=column_map)
    except UnclearColumns as problem:
        if len(problem.headers) < len(REQUIRED_FIELDS):
            upload_discard(request.session, token)
            raise
        form = ColumnMapForm(headers=problem.headers, found=problem.found)
        return {**upload, "map_form": form, "unclear": _unclear_text(problem, upload["filename"])}
    except CsvFormatError:
        upload_discard(request.session, token)
        raise
    can_import = report.valid_rows > 0 and (upload["skip_invalid"] or not report.error_count)
    if not can_import and column_map is None:
        # Nothing can be confirmed: do not keep the customers' data on disk. After a column
        # choice the file stays a little longer: the choice may be what was wrong.
        upload_discard(request.session, token)
    # The confirm form carries the column choices this report was made with, so another
    # tab checking other choices cannot change what this confirmation imports.
    columns = json.dumps(column_map) if column_map else ""
    return {**upload, "report": report, "can_import": can_import, "columns": columns}


def _unclear_text(problem: UnclearColumns, filename: str) -> str:
    parts = []
    if problem.missing:
        labels = ", ".join(field_label(field) for field in problem.missing)
        parts.append(f"Not found by name in {filename}: {labels}.")
    if problem.ambiguous:
        labels = ", ".join(field_label(field) for field in problem.ambiguous)
        parts.append(f"More than one column of {filename} could hold: {labels}.")
    return " ".join(parts)


def _map_form(path, answers=None, initial=None) -> ColumnMapForm:
    """The column form for the file's header row, bound to the user's answers or showing
    the ``initial`` {field: column} choices."""
    try:
        customers_import_file(path=path, dry_run=True)
    except UnclearColumns as problem:
        found = problem.found if initial is None else initial
        return ColumnMapForm(answers, headers=problem.headers, found=found)
    raise CsvFormatError("the file's columns were already recognised; upload it again")


def _column_map(text: str) -> list[str] | None:
    """The column choices (a field per column) a form carried; [] for none, None when
    they are not valid ones."""
    if not text:
        return []
    try:
        column_map = json.loads(text)
    except ValueError:
        return None
    fields = {"", *REQUIRED_FIELDS, *OPTIONAL_FIELDS}
    if not isinstance(column_map, list) or not all(
        isinstance(field, str) and field in fields for field in column_map
    ):
        return None
    return column_map


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_http_methods(["POST"])
def import_confirm(request: HttpRequest) -> HttpResponse:
    """Step 2: write the file checked in step 1."""
    token = request.POST.get("token", "")
    path = upload_path(request.session, token)
    if path is None:
        messages.error(request, EXPIRED)
        return redirect("customers:import")
    skip_invalid = request.POST.get("skip_invalid") == "1"
    column_map = _column_map(request.POST.get("columns", ""))
    if column_map is None:
        messages.error(request, "The column choices were garbled; check the file again.")
        return redirect("customers:import")
    try:
        report = customers_import_file(
            path=path, skip_invalid=skip_invalid, column_map=column_map or None
        )
    except CsvFormatError as problem:
        messages.error(request, str(problem))
        return redirect("customers:import")
    finally:
        upload_discard(request.session, token)
    if report.written:
        messages.success(
            request,
            f"Imported {report.created:,} new and {report.updated:,} changed customers "
            f"({report.unchanged:,} unchanged"
            + (f", {report.invalid_rows:,} invalid rows skipped)." if report.error_count else ")."),
        )
    else:
        messages.error(request, "Nothing was imported: the file has invalid rows.")
    return redirect("customers:import")
