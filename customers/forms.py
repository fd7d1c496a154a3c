from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from customers.catalogue import BUILT_IN_KEYS, CATEGORICAL, NUMERIC, TEXT_MAX_LENGTH, Catalogue
from customers.csv_format import (
    ID,
    NEW_ATTRIBUTE,
    Invalid,
    parse_category,
    parse_customer_id,
    parse_number,
)
from customers.expressions import ExpressionError, parse_derivation
from customers.models import Customer
from customers.selectors import catalogue_current


def _plain_number(value) -> bool:
    """Typed text is a plain decimal number, as the importer reads one: "3_0", "1e2",
    "١٢" (Arabic-Indic) or "３０" (full-width) are not, though Python's float() takes them."""
    if value in forms.Field.empty_values or isinstance(value, int | float):
        return True
    try:
        parse_number(str(value), decimal_comma=False)
    except Invalid:
        return False
    return True


class PlainFloatField(forms.FloatField):
    """A FloatField that takes plain decimal numbers only (see _plain_number)."""

    def to_python(self, value):
        if not _plain_number(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class PlainIntegerField(forms.IntegerField):
    """An IntegerField that takes plain decimal numbers only (see _plain_number)."""

    def to_python(self, value):
        if not _plain_number(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


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


DERIVE_ROWS = 4


class ColumnMapForm(forms.Form):
    """What each column of the uploaded file holds, and the columns to derive from them.

    One choice per column, by position (a header may be blank or repeated), with the
    file's first values beside it; the importer's recognition comes preselected.
    """

    def __init__(self, *args, columns: list[ColumnView], catalogue: Catalogue, **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = columns
        choices = target_choices(catalogue)
        for index, column in enumerate(columns):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=column.name,
                choices=choices,
                required=False,
                initial=column.initial,
                help_text=column.examples,
            )
        for row in range(DERIVE_ROWS):
            self.fields[f"derive_{row}"] = forms.CharField(
                label=f"Derived column {row + 1}",
                required=False,
                max_length=1000,
                help_text="e.g. age=2014-[Year_Birth] or total_spend=[MntWines]+[MntFruits]"
                if row == 0
                else "",
            )

    def clean(self):
        data = super().clean()
        taken: dict[str, str] = {}
        for index, column in enumerate(self.columns):
            target = data.get(f"column_{index}") or ""
            if target and not target.startswith(NEW_ATTRIBUTE):
                if target in taken:
                    self.add_error(
                        f"column_{index}",
                        f"Columns “{column.name}” and “{taken[target]}” both hold "
                        f"{dict(self.fields[f'column_{index}'].choices)[target]}; choose one.",
                    )
                taken[target] = column.name
        derivations = []
        for row in range(DERIVE_ROWS):
            text = (data.get(f"derive_{row}") or "").strip()
            if text:
                try:
                    derivations.append(parse_derivation(text))
                except ExpressionError as problem:
                    self.add_error(f"derive_{row}", str(problem))
        data["derivations"] = derivations
        return data

    def targets(self) -> list[str]:
        """The target of every column by position ("" for none), as the importer takes it."""
        return [self.cleaned_data.get(f"column_{i}") or "" for i in range(len(self.columns))]

    def derive_texts(self) -> list[str]:
        return [d.name + "=" + d.expression.text for d in self.cleaned_data["derivations"]]


@dataclass(frozen=True)
class ColumnView:
    name: str
    examples: str
    initial: str


def target_choices(catalogue: Catalogue) -> list[tuple[str, str]]:
    return [
        ("", "Not imported"),
        (ID, "Customer ID"),
        *((f.key, f.label) for f in catalogue),
        (f"{NEW_ATTRIBUTE}{NUMERIC}", "New attribute: a number"),
        (f"{NEW_ATTRIBUTE}{CATEGORICAL}", "New attribute: a category"),
    ]


class CustomerAdminForm(forms.ModelForm):
    """The customer with one field per attribute of the catalogue (numbers checked as the
    importer checks them), written back into ``Customer.attributes``."""

    class Meta:
        model = Customer
        fields = ("customer_id", *BUILT_IN_KEYS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attribute_features = catalogue_current().attributes()
        stored = self.instance.attributes or {}
        for feature in self.attribute_features:
            field_class = PlainFloatField if feature.is_numeric else forms.CharField
            options = {} if feature.is_numeric else {"max_length": TEXT_MAX_LENGTH}
            if feature.is_numeric and feature.whole:
                field_class = PlainIntegerField
            self.fields[f"attr_{feature.key}"] = field_class(
                label=feature.label,
                required=False,
                initial=stored.get(feature.key),
                help_text=feature.help,
                **options,
            )

    def clean_customer_id(self) -> str:
        try:
            return parse_customer_id(self.cleaned_data["customer_id"])
        except Invalid as problem:
            raise forms.ValidationError(f"The customer ID {problem.reason}.") from None

    def clean(self):
        data = super().clean()
        for feature in self.attribute_features:
            name = f"attr_{feature.key}"
            if not feature.is_numeric and data.get(name):
                try:
                    data[name] = parse_category(data[name])
                except Invalid as problem:
                    self.add_error(name, f"{feature.label} {problem.reason}.")
        return data

    def save(self, commit: bool = True):
        attributes = dict(self.instance.attributes or {})
        for feature in self.attribute_features:
            value = self.cleaned_data.get(f"attr_{feature.key}")
            attributes[feature.key] = None if value in ("", None) else value
        self.instance.attributes = attributes
        return super().save(commit)
