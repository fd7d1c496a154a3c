"""Forms of the purchase pages: the order-log upload, its column and date steps."""

from __future__ import annotations

from django import forms

from clustering.forms import check_segment_actions, check_segment_description
from customers.forms import ImportUploadForm
from purchases.dates import BY_KEY
from purchases.models import RfmStrategy
from purchases.transaction_format import FIELDS, LABELS, REQUIRED


class OrderLogUploadForm(ImportUploadForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].label = "Order log"
        limit = self.fields["file"].help_text.rsplit("up to ", 1)[-1]
        self.fields["file"].help_text = (
            "One purchase per row: customer, date, amount (quantity, order ID and product "
            f"optional); comma, semicolon, tab or space separated; up to {limit}"
        )


COLUMN_CHOICES = [
    ("", "Not imported"),
    *((f, LABELS[f][0].upper() + LABELS[f][1:]) for f in FIELDS),
]


class OrderColumnsForm(forms.Form):
    """What each column of the order log holds, by position, and whether row 1 is a header."""

    header_row = forms.BooleanField(
        required=False, label="The first row is a header (column names, not a purchase)"
    )

    def __init__(self, *args, columns: list[tuple[str, str, str]], **kwargs):
        """``columns``: (name, first values, guess) of each column."""
        super().__init__(*args, **kwargs)
        self.width = len(columns)
        for index, (name, examples, guess) in enumerate(columns):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=name,
                choices=COLUMN_CHOICES,
                required=False,
                initial=guess,
                help_text=examples,
            )

    def column_fields(self):
        return [self[f"column_{i}"] for i in range(self.width)]

    def clean(self):
        data = super().clean()
        taken: dict[str, str] = {}
        for index in range(self.width):
            target = data.get(f"column_{index}") or ""
            name = self.fields[f"column_{index}"].label
            if target in taken:
                self.add_error(
                    f"column_{index}",
                    f"Columns “{name}” and “{taken[target]}” both hold the {LABELS[target]}; "
                    "choose one.",
                )
            elif target:
                taken[target] = name
        missing = [LABELS[f] for f in REQUIRED if f not in taken]
        if missing:
            raise forms.ValidationError(
                f"Choose the column that holds the {' and the '.join(missing)}: every purchase "
                "needs a customer, a date and an amount."
            )
        return data

    def columns(self) -> list[str]:
        return [self.cleaned_data.get(f"column_{i}") or "" for i in range(self.width)]


class DateFormatForm(forms.Form):
    """The dates could be read two ways (3 April or 4 March): the user says which."""

    date_format = forms.ChoiceField(widget=forms.RadioSelect, label="The dates are written as")

    def __init__(self, *args, candidates: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date_format"].choices = [(key, BY_KEY[key].label) for key in candidates]


class RfmStrategyForm(forms.ModelForm):
    """An RFM group's description and actions, bounded like a segment's."""

    actions_text = forms.CharField(
        label="Actions",
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="One action per line.",
    )

    class Meta:
        model = RfmStrategy
        fields = ("description",)
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actions_text"].initial = "\n".join(self.instance.actions or [])
        self.fields["description"].widget.attrs["autofocus"] = True

    def clean_description(self) -> str:
        return check_segment_description(self.cleaned_data.get("description", "").strip())

    def clean_actions_text(self) -> str:
        text = self.cleaned_data.get("actions_text", "")
        check_segment_actions(_lines(text))
        return text

    def save(self, commit: bool = True) -> RfmStrategy:
        self.instance.actions = _lines(self.cleaned_data.get("actions_text", ""))
        return super().save(commit)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class ClvStartForm(forms.Form):
    calibration_end = forms.DateField(
        required=False,
        label="Check against a later period: fit up to (optional)",
        help_text="A day inside the history, e.g. 2026-04-30: a model fitted on the purchases "
        "up to it is compared with the purchases after it.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    horizon_days = forms.IntegerField(
        label="Expected value over the next (days)", min_value=1, max_value=3650, initial=365
    )
