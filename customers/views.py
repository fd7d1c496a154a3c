from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from customers.csv_format import CsvFormatError
from customers.forms import ImportUploadForm
from customers.services import customers_import_file
from customers.uploads import upload_discard, upload_path, upload_store

IMPORT_PERMISSIONS = ("customers.add_customer", "customers.change_customer")


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
        token = upload_store(request.session, form.cleaned_data["file"])
        skip_invalid = form.cleaned_data["skip_invalid"]
        try:
            report = customers_import_file(path=upload_path(request.session, token), dry_run=True)
        except CsvFormatError as problem:
            upload_discard(request.session, token)
            form.add_error("file", str(problem))
        else:
            can_import = report.valid_rows > 0 and (skip_invalid or not report.error_count)
            if not can_import:
                # Nothing can be confirmed: do not keep the customers' data on disk.
                upload_discard(request.session, token)
            context.update(
                report=report,
                token=token,
                skip_invalid=skip_invalid,
                can_import=can_import,
                filename=form.cleaned_data["file"].name,
            )
    return render(request, "customers/import.html", context)


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_http_methods(["POST"])
def import_confirm(request: HttpRequest) -> HttpResponse:
    """Step 2: write the file checked in step 1."""
    token = request.POST.get("token", "")
    path = upload_path(request.session, token)
    if path is None:
        messages.error(request, "That upload has expired or was already imported; upload again.")
        return redirect("customers:import")
    skip_invalid = request.POST.get("skip_invalid") == "1"
    try:
        report = customers_import_file(path=path, skip_invalid=skip_invalid)
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
