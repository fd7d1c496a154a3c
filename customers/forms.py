from __future__ import annotations

from django import forms


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8; comma, semicolon or tab separated.")
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import the valid rows even if some rows are invalid",
    )
