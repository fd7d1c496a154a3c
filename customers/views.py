"""The import pages: upload, the column step, the report, confirm; the import history."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from customers.catalogue import feature_label
from customers.csv_format import (
    ID,
    NEW_ATTRIBUTE,
    CsvFormatError,
    MappingRequest,
    UnclearColumns,
)
from customers.expressions import ExpressionError, parse_derivation
from customers.forms import DERIVE_ROWS, ColumnMapForm, ColumnView, ImportUploadForm
from customers.models import Customer, ImportRecord
from customers.selectors import catalogue_current
from customers.services import (
    MAX_COLUMNS,
    FileLayout,
    ImportOptions,
    NeedsConfirmation,
    UndoRefused,
    customers_import_file,
    id_prefix_for,
    import_undo,
    read_layout,
)
from customers.uploads import (
    FILE_NAME_MAX_LENGTH,
    upload_claim,
    upload_discard,
    upload_first_step,
    upload_known,
    upload_path,
    upload_release,
)

IMPORT_PERMISSIONS = ("customers.add_customer", "customers.change_customer")
EXPIRED = "That upload has expired or was already imported; upload again."
ALREADY_IMPORTED = (
    "That upload was already imported (or is being imported right now, or has expired): "
    "see the import history, or upload the file again."
)
# What the pages carry back and forth in hidden fields is bounded like what a user types.


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    """Step 1: upload a file; a file the site reads fully goes straight to the report,
    any other to the column step. Nothing is written yet."""
    # Bound on every POST: a POST carrying only the file (CSRF token in a header) is still a POST.
    form = (
        ImportUploadForm(request.POST, request.FILES)
        if request.method == "POST"
        else ImportUploadForm()
    )
    context = {"form": form}
    if request.method == "POST" and form.is_valid():
        context.update(
            upload_first_step(
                request,
                form,
                _first_look,
                waiting=("can_import", "map_form"),
                refused=(CsvFormatError,),
            )  # fmt: skip
        )
    return render(request, "customers/import.html", context)


def _first_look(request: HttpRequest, upload: dict) -> dict:
    path = upload_path(request.session, upload["token"])
    with open(path, "rb") as stream:
        layout, unclear = _step_layout(stream, upload["filename"])
    if unclear is not None:
        catalogue = catalogue_current()
        for target, names in unclear.ambiguous.items():
            label = "the customer ID" if target == ID else feature_label(target, catalogue)
            columns = " and ".join(repr(name) for name in names)
            both = "both" if len(names) == 2 else "all"
            messages.warning(
                request,
                f"Columns {columns} {both} look like {label}: choose the one that holds it.",
            )
    if _fully_recognised(layout):
        return _check(request, upload, choices={})
    return {**upload, "map_form": _map_form(layout)}


def _step_layout(stream, filename: str) -> tuple[FileLayout, UnclearColumns | None]:
    """How the column step reads the file. Two columns named for one field do not stop
    it: the first one is preselected and the user chooses (the problem says which)."""
    try:
        return read_layout(stream, _request(filename, attributes="all")), None
    except UnclearColumns as unclear:
        return read_layout(stream, _request(filename, explicit=unclear.targets)), unclear


def _fully_recognised(layout: FileLayout) -> bool:
    """Every column is a known feature and there is an ID: nothing to ask."""
    mapping = layout.mapping
    return (
        ID in mapping.positions
        and not mapping.new_attributes
        and not mapping.ignored
        and not layout.questions
    )


def _request(filename: str, **options) -> MappingRequest:
    return MappingRequest(id_prefix=id_prefix_for(filename), **options)


def _map_form(layout: FileLayout, data=None, initial=None) -> ColumnMapForm:
    mapping = layout.mapping
    by_position = {position: key for key, position in mapping.positions.items()}
    new_keys = set(mapping.new_keys)  # a set: one look-up per column, however many
    columns = []
    for index, header in enumerate(mapping.headers):
        target = by_position.get(index, "")
        feature = mapping.features.get(target)
        if feature is not None and target in new_keys:
            target = f"{NEW_ATTRIBUTE}{feature.kind}"
        profile = layout.profiles[index] if index < len(layout.profiles) else None
        examples = "e.g. " + ", ".join(profile.examples) if profile and profile.examples else ""
        name = header.strip() or f"Column {index + 1} (no name)"
        columns.append(ColumnView(name, examples, target))
    return ColumnMapForm(data, initial=initial, columns=columns, catalogue=catalogue_current())


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_POST
def import_map(request: HttpRequest) -> HttpResponse:
    """Step 1b: the user said what each column holds; check the file with those choices."""
    upload = _upload_from(request)
    path = upload_path(request.session, upload["token"])
    if path is None:
        messages.error(request, EXPIRED)
        return redirect("customers:import")
    try:
        with open(path, "rb") as stream:
            layout, _unclear = _step_layout(stream, upload["filename"])
        if request.POST.get("rechoose"):
            # Back from a report: the choices it was made with, not the first guess.
            form = _map_form(layout, None, _initial(request.POST.get("columns", "")))
        else:
            form = _map_form(layout, request.POST)
        if request.POST.get("rechoose") or not form.is_valid():
            context = {**upload, "map_form": form}
        else:
            choices = {"targets": form.targets(), "derive": form.derive_texts()}
            context = _check(request, upload, choices=choices)
    except CsvFormatError as problem:
        messages.error(request, str(problem))
        return redirect("customers:import")
    return render(request, "customers/import.html", {"form": ImportUploadForm(), **context})


def _initial(columns: str) -> dict:
    """The column step's fields as a report's column choices had them."""
    choices = _choices(columns) or {}
    initial = {f"column_{i}": target for i, target in enumerate(choices.get("targets", []))}
    initial.update({f"derive_{i}": text for i, text in enumerate(choices.get("derive", []))})
    return initial


def _upload_from(request: HttpRequest) -> dict:
    return {
        "token": request.POST.get("token", ""),
        "filename": request.POST.get("filename", "the file")[:FILE_NAME_MAX_LENGTH],
        "skip_invalid": request.POST.get("skip_invalid") == "1",
    }


def _check(request: HttpRequest, upload: dict, *, choices: dict) -> dict:
    """Validate a stored upload with the column choices: the report page's context."""
    path = upload_path(request.session, upload["token"])
    report = customers_import_file(
        path=path,
        request=_mapping_request(upload["filename"], choices),
        options=ImportOptions(dry_run=True),
    )
    can_import = report.valid_rows > 0 and (upload["skip_invalid"] or not report.error_count)
    # The confirm form carries the choices this report was made with, so another tab
    # checking other choices cannot change what this confirmation imports.
    return {**upload, "report": report, "can_import": can_import, "columns": json.dumps(choices)}


def _mapping_request(filename: str, choices: dict) -> MappingRequest:
    targets = choices.get("targets")
    derive = tuple(parse_derivation(text) for text in choices.get("derive", ()))
    return _request(filename, explicit=targets or None, derive=derive)


def _choices(text: str) -> dict | None:
    """The column choices a form carried, or None when they are garbled."""
    try:
        choices = json.loads(text or "{}")
        if not isinstance(choices, dict):
            return None
        targets, derive = choices.get("targets", []), choices.get("derive", [])
        if not isinstance(targets, list) or not isinstance(derive, list):
            return None
        if len(targets) > MAX_COLUMNS or len(derive) > DERIVE_ROWS:
            return None
        if not all(isinstance(t, str) for t in [*targets, *derive]):
            return None
        for text in derive:
            parse_derivation(text)
    except (ValueError, TypeError, ExpressionError):
        return None
    return choices


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_POST
def import_confirm(request: HttpRequest) -> HttpResponse:
    """Step 2: write the file checked in step 1, once however often it is confirmed."""
    upload = _upload_from(request)
    if not upload_known(request.session, upload["token"]):
        messages.error(request, EXPIRED)
        return redirect("customers:import")
    choices = _choices(request.POST.get("columns", ""))
    if choices is None:
        messages.error(request, "The column choices were garbled; check the file again.")
        return redirect("customers:import")
    path = upload_claim(request.session, upload["token"])
    if path is None:
        messages.error(request, ALREADY_IMPORTED)
        return redirect("customers:import")
    options = ImportOptions(
        skip_invalid=upload["skip_invalid"],
        confirmed=request.POST.get("confirmed") == "1",
        file_name=upload["filename"],
        user=request.user,
    )
    try:
        report = customers_import_file(
            path=path, request=_mapping_request(upload["filename"], choices), options=options
        )
    except NeedsConfirmation as waiting:
        upload_release(upload["token"])
        context = {**upload, "report": waiting.report, "can_import": True, "ask": True}
        context["columns"] = json.dumps(choices)
        return render(request, "customers/import.html", {"form": ImportUploadForm(), **context})
    except CsvFormatError as problem:
        upload_discard(request.session, upload["token"])
        messages.error(request, str(problem))
        return redirect("customers:import")
    except BaseException:
        upload_discard(request.session, upload["token"])  # no customer data left behind
        raise
    upload_discard(request.session, upload["token"])
    if report.written:
        messages.success(
            request,
            f"Imported {report.created:,} new and {report.updated:,} changed customers "
            f"({report.unchanged:,} unchanged"
            + (f", {report.invalid_rows:,} invalid rows skipped)." if report.error_count else ").")
            + " It can be undone from the import history.",
        )
    else:
        messages.error(request, "Nothing was imported: the file has invalid rows.")
    return redirect("customers:import")


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
@require_safe
def import_history(request: HttpRequest) -> HttpResponse:
    records = ImportRecord.objects.select_related("created_by", "undone_by")[:100]
    return render(request, "customers/import_history.html", {"records": records})


@login_required
@permission_required("customers.undo_import", raise_exception=True)
@require_POST
def import_undo_view(request: HttpRequest, record_id: int) -> HttpResponse:
    try:
        record = import_undo(record_id=record_id, user=request.user)
    except ImportRecord.DoesNotExist:
        messages.error(request, "That import does not exist.")
    except UndoRefused as problem:
        messages.error(request, str(problem))
    else:
        messages.success(
            request,
            f"Undid import {record.id} of {record.file_name}: {record.created:,} customers "
            f"removed, {record.updated:,} restored.",
        )
    return redirect("customers:import_history")


@require_safe
@login_required
@permission_required("clustering.view_segment", raise_exception=True)
def customer_detail(request: HttpRequest, customer_pk: int) -> HttpResponse:
    """One customer: values, current segment, RFM, segments across runs, predictions."""
    from clustering.selectors import customer_segment, customer_values
    from operations.history import customer_predictions
    from operations.selectors import customer_segment_history
    from purchases.selectors import customer_purchase_summary

    customer = get_object_or_404(Customer, pk=customer_pk)
    catalogue = catalogue_current()
    values = customer_values(customer=customer)
    context = {
        "customer": customer,
        # A category with fixed codes (sex) in words.
        "values": [
            (feature.label, dict(feature.choices).get(values[feature.key], values[feature.key]))
            for feature in catalogue
            if feature.key in values
        ],
        "segment": customer_segment(customer=customer),
        "purchases": customer_purchase_summary(customer_pk=customer.pk),
        "history": customer_segment_history(customer_pk=customer.pk),
        "predictions": customer_predictions(customer_id=customer.customer_id),
    }
    return render(request, "customers/customer_detail.html", context)
