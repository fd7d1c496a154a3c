from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat


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
