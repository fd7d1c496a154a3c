from __future__ import annotations

from django import forms

from customers.models import Customer


class CustomerForm(forms.ModelForm):
    """The admin's edit form; model validators enforce the ranges field by field."""

    class Meta:
        model = Customer
        fields = (
            "customer_id",
            "sex",
            "age",
            "annual_income",
            "spending_score",
            "purchase_frequency",
        )


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8; comma, semicolon or tab separated.")
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import the valid rows even if some rows are invalid",
    )
