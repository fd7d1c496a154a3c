from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from customers.csv_format import OPTIONAL_FIELDS, REQUIRED_FIELDS
from customers.models import field_label


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="CSV file")
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import the valid rows even if some rows are invalid",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = filesizeformat(settings.IMPORT_UPLOAD_MAX_BYTES)
        self.fields["file"].help_text = f"UTF-8; comma, semicolon or tab separated; up to {limit}."

    def clean_file(self):
        # The page checks and imports inside a web request; a bigger file would outlast the
        # server's request timeout, so it goes to the command, which has no such limit.
        uploaded = self.cleaned_data["file"]
        limit = settings.IMPORT_UPLOAD_MAX_BYTES
        if uploaded.size > limit:
            raise forms.ValidationError(
                f"This file is {filesizeformat(uploaded.size)}; the upload page takes files "
                f"of up to {filesizeformat(limit)} (about {limit // 32:,} customers). Split "
                "it, or have an administrator run "
                "`python manage.py import_customers FILE`, which has no limit."
            )
        return uploaded


class ColumnMapForm(forms.Form):
    """Which column of the uploaded file holds each customer field.

    Shown when the importer could not find a required field by name; every field is
    listed, the ones it did recognise already chosen.
    """

    def __init__(self, *args, headers: tuple[str, ...], found: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = headers
        # Columns are chosen by position: a header may be blank or repeated.
        columns = [(str(i), _column_name(headers, i)) for i in range(len(headers))]
        for field in REQUIRED_FIELDS + OPTIONAL_FIELDS:
            label = field_label(field)
            required = field in REQUIRED_FIELDS
            self.fields[field] = forms.ChoiceField(
                label=label,
                choices=[("", "Choose a column" if required else "Not in this file"), *columns],
                required=required,
                initial=str(found[field]) if field in found else "",
                error_messages={"required": f"Choose the column that holds the {label.lower()}."},
            )

    def clean(self):
        data = super().clean()
        chosen = [column for column in data.values() if column]
        if len(chosen) != len(set(chosen)):
            raise forms.ValidationError("Each column can hold only one field.")
        return data

    def column_map(self) -> list[str]:
        """The field of every column of the file ("" for none), by position, as the
        importer's ``column_map`` takes it: nothing is left to recognition by name, so a
        field the user left out stays out."""
        fields = {int(column): field for field, column in self.cleaned_data.items() if column}
        return [fields.get(i, "") for i in range(len(self.headers))]


def _column_name(headers: tuple[str, ...], index: int) -> str:
    header = headers[index].strip()
    if not header:
        return f"Column {index + 1} (no name)"
    if headers.count(headers[index]) > 1:
        return f"{header} (column {index + 1})"
    return header
