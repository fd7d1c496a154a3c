from __future__ import annotations

from django import forms

from clustering import engine
from clustering.models import Segment
from customers.models import RANGES, Customer, field_label

FEATURE_CHOICES = [(name, field_label(name)) for name in engine.FEATURES]


def _range_field(field: str, label: str, help_text: str, *, decimal: bool = False):
    bounds = RANGES[field]
    kind = forms.FloatField if decimal else forms.IntegerField
    return kind(
        label=label,
        required=False,
        min_value=bounds.minimum,
        max_value=bounds.maximum,
        help_text=help_text,
        error_messages={
            "required": f"Enter the customer's {label.lower()}.",
            "invalid": f"{label} must be a number.",
            "min_value": f"{label} must be at least %(limit_value)s.",
            "max_value": f"{label} must be at most %(limit_value)s.",
        },
    )


class PredictForm(forms.Form):
    age = _range_field("age", "Age", "In years, 16 to 110.")
    annual_income = _range_field(
        "annual_income", "Annual income (k)", "Thousands a year, e.g. 75.", decimal=True
    )
    spending_score = _range_field(
        "spending_score", "Spending score", "1 (spends little) to 100 (spends a lot)."
    )
    purchase_frequency = _range_field("purchase_frequency", "Purchases per year", "E.g. 12.")
    sex = forms.ChoiceField(
        choices=Customer.Sex.choices,
        initial=Customer.Sex.UNKNOWN,
        required=False,
        help_text="Never used to place a customer.",
    )

    def __init__(self, *args, features: tuple[str, ...] = engine.FEATURES, **kwargs):
        super().__init__(*args, **kwargs)
        self.features = features
        for name in engine.FEATURES:
            if name in features:
                self.fields[name].required = True
            else:
                del self.fields[name]  # the active model does not use it: do not ask

    def row(self) -> dict[str, float]:
        return {name: self.cleaned_data[name] for name in self.features}


class SegmentForm(forms.ModelForm):
    actions_text = forms.CharField(
        label="Actions",
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="One action per line.",
    )

    class Meta:
        model = Segment
        fields = ("name", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        # A blank name (spaces included, they are stripped) never reaches clean_name.
        error_messages = {"name": {"required": "A segment needs a name."}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actions_text"].initial = "\n".join(self.instance.actions or [])
        # The form replaces the card in place: keyboard users land in its first field.
        self.fields["name"].widget.attrs["autofocus"] = True

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A segment needs a name.")
        return name

    def save(self, commit: bool = True) -> Segment:
        lines = self.cleaned_data.get("actions_text", "").splitlines()
        self.instance.actions = [line.strip() for line in lines if line.strip()]
        return super().save(commit)


class RetrainForm(forms.Form):
    MODE_AUTO, MODE_FIXED = "auto", "fixed"
    mode = forms.ChoiceField(
        choices=[
            (MODE_AUTO, "Choose the number of segments for me"),
            (MODE_FIXED, "Use a fixed number of segments"),
        ],
        initial=MODE_AUTO,
        widget=forms.RadioSelect,
    )
    k = forms.IntegerField(label="Number of segments", min_value=2, max_value=20, required=False)
    k_min = forms.IntegerField(label="Try from", min_value=2, max_value=20, initial=2)
    k_max = forms.IntegerField(label="up to", min_value=2, max_value=20, initial=10)
    features = forms.MultipleChoiceField(
        choices=FEATURE_CHOICES,
        initial=list(engine.FEATURES),
        widget=forms.CheckboxSelectMultiple,
        help_text="At least two. Sex is never used.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The range is ignored with a fixed number, so the browser must not refuse the form
        # over a leftover range; clean() checks it whenever it is used.
        for name in ("k_min", "k_max"):
            self.fields[name].required = False
            self.fields[name].widget.attrs.pop("min", None)
            self.fields[name].widget.attrs.pop("max", None)

    def clean(self):
        data = super().clean()
        fixed = data.get("mode") == self.MODE_FIXED
        if fixed:
            # The range is not used with a fixed number: a leftover range must not block it.
            for name in ("k_min", "k_max"):
                self._errors.pop(name, None)
        else:
            for name in ("k_min", "k_max"):
                if data.get(name) is None and name not in self._errors:
                    self.add_error(name, "Give both ends of the range.")
        if not fixed and data.get("k_min") and data.get("k_max") and data["k_min"] > data["k_max"]:
            self.add_error("k_max", "The upper end must not be below the lower end.")
        if fixed and not data.get("k") and "k" not in self._errors:
            self.add_error("k", "Give the number of segments, or let the site choose.")
        if data.get("features") is not None and len(data["features"]) < 2:
            self.add_error("features", "Choose at least two features.")
        return data

    def params(self):
        from clustering.services import TrainingParams

        data = self.cleaned_data
        features = tuple(f for f in engine.FEATURES if f in data["features"])
        if data["mode"] == self.MODE_FIXED:
            return TrainingParams(features, k=data["k"])  # the range is not used
        return TrainingParams(features, k_min=data["k_min"], k_max=data["k_max"])
