from __future__ import annotations

from django import forms

from clustering.algorithms import ALGORITHMS, COMPARE, COVARIANCE_AUTO, COVARIANCE_TYPES, KMEANS
from clustering.models import (
    SEGMENT_ACTION_MAX_LENGTH,
    SEGMENT_ACTIONS_MAX,
    SEGMENT_DESCRIPTION_MAX_LENGTH,
    Segment,
    TrainingRun,
)
from customers.catalogue import BUILT_IN_CATALOGUE, Catalogue, Feature
from customers.forms import PlainFloatField, PlainIntegerField


def category_field(feature: Feature) -> forms.Field:
    """A categorical feature of a run: a select of the categories the run knows."""
    return forms.ChoiceField(
        label=feature.label,
        choices=[("", "—"), *feature.choices],
        help_text=feature.help,
        error_messages={
            "required": f"Choose the customer's {feature.label.lower()}.",
            "invalid_choice": f"{feature.label}: %(value)s is not a category this model knows; "
            f"use one of: {', '.join(code for code, _ in feature.choices)}.",
        },
    )


def feature_field(feature: Feature) -> forms.Field:
    """The form field of a numeric catalogue feature: its label, range and whole-number rule."""
    if not feature.is_numeric:
        return category_field(feature)
    # Plain decimals only, as the importer reads them ("3_0", "1e2", "١٢" are not numbers).
    kind = PlainIntegerField if feature.whole else PlainFloatField
    label = feature.label
    return kind(
        label=label,
        required=True,
        min_value=feature.minimum,
        max_value=feature.maximum,
        help_text=feature.help,
        error_messages={
            "required": f"Enter the customer's {label.lower()}.",
            "invalid": f"{label} must be a whole number."
            if feature.whole
            else f"{label} must be a number.",
            "min_value": f"{label} must be at least %(limit_value)s.",
            "max_value": f"{label} must be at most %(limit_value)s.",
        },
    )


class PredictForm(forms.Form):
    """One field per feature of the active model, as the run defined them."""

    def __init__(self, *args, definitions: tuple[Feature, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.definitions = definitions
        for feature in definitions:
            self.fields[feature.key] = feature_field(feature)

    def row(self) -> dict[str, float]:
        return {feature.key: self.cleaned_data[feature.key] for feature in self.definitions}


def check_segment_description(description: str) -> str:
    if len(description) > SEGMENT_DESCRIPTION_MAX_LENGTH:
        raise forms.ValidationError(
            f"The description is {len(description):,} characters long; keep it within "
            f"{SEGMENT_DESCRIPTION_MAX_LENGTH:,} (it is shown with the segment everywhere)."
        )
    return description


def check_segment_actions(actions) -> list[str]:
    """A segment's actions: a list of at most SEGMENT_ACTIONS_MAX short texts."""
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise forms.ValidationError("The actions must be a list of texts.")
    if len(actions) > SEGMENT_ACTIONS_MAX:
        raise forms.ValidationError(
            f"{len(actions):,} actions; a segment takes at most {SEGMENT_ACTIONS_MAX}."
        )
    for number, action in enumerate(actions, start=1):
        if len(action) > SEGMENT_ACTION_MAX_LENGTH:
            raise forms.ValidationError(
                f"Action {number} is {len(action):,} characters long; keep each within "
                f"{SEGMENT_ACTION_MAX_LENGTH}."
            )
    return actions


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
        error_messages = {
            "name": {
                "required": "A segment needs a name.",
                "unique": "Another segment already has this name; choose another name.",
            }
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actions_text"].initial = "\n".join(self.instance.actions or [])
        # The form replaces the card in place: keyboard users land in its first field.
        self.fields["name"].widget.attrs["autofocus"] = True

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A segment needs a name.")
        # Said here in plain words; the database's unique index still guards a race.
        if Segment.objects.filter(name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(
                f"Another segment is already called “{name}”; choose another name."
            )
        return name

    def clean_description(self) -> str:
        return check_segment_description(self.cleaned_data.get("description", ""))

    def clean_actions_text(self) -> str:
        text = self.cleaned_data.get("actions_text", "")
        check_segment_actions([line.strip() for line in text.splitlines() if line.strip()])
        return text

    def save(self, commit: bool = True) -> Segment:
        lines = self.cleaned_data.get("actions_text", "").splitlines()
        self.instance.actions = [line.strip() for line in lines if line.strip()]
        return super().save(commit)


ALGORITHM_CHOICES = [
    *ALGORITHMS.items(),
    (COMPARE, "Compare them all and recommend one"),
]


def training_feature_choices(catalogue) -> list[tuple[str, str]]:
    """What a retrain (or a schedule) may cluster on: the numeric features, then the
    categorical attributes, each counted as one feature (one-hot, clustering.encoding)."""
    choices = [(f.key, f.label) for f in catalogue.clusterable()]
    choices += [(f.key, f"{f.label} (category)") for f in catalogue.clusterable_categorical()]
    return choices


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
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every number that nearly all customers have, except the "
        "purchase-history values (tick those to use them). Sex is never used.",
    )
    missing = forms.ChoiceField(
        label="Customers missing a chosen feature",
        choices=TrainingRun.Missing.choices,
        initial=TrainingRun.Missing.EXCLUDE,
        widget=forms.RadioSelect,
    )
    log_mode = forms.ChoiceField(
        label="Skewed amounts",
        choices=[
            ("auto", "Read heavily skewed amounts on a log scale (automatic)"),
            ("none", "Never"),
            ("chosen", "Only the features ticked below"),
        ],
        initial="auto",
        widget=forms.RadioSelect,
    )
    log_features = forms.MultipleChoiceField(
        label="Log scale for", required=False, widget=forms.CheckboxSelectMultiple
    )
    algorithm = forms.ChoiceField(
        label="Algorithm",
        choices=ALGORITHM_CHOICES,
        initial=KMEANS,
        required=False,
        help_text="Compare tries every algorithm in one retrain and recommends one; any of "
        "them can be activated from the run's page. HDBSCAN chooses its own number of "
        "segments.",
    )
    covariance = forms.ChoiceField(
        label="Gaussian mixture covariance",
        choices=[(COVARIANCE_AUTO, "Chosen by BIC (automatic)"), *COVARIANCE_TYPES.items()],
        initial=COVARIANCE_AUTO,
        required=False,
        help_text="The shape of each mixture segment; automatic keeps the type with the "
        "lowest BIC. Other algorithms ignore it.",
    )

    def __init__(self, *args, catalogue: Catalogue = BUILT_IN_CATALOGUE, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalogue = catalogue
        self.fields["features"].choices = training_feature_choices(catalogue)
        self.fields["log_features"].choices = [
            (f.key, f.label) for f in catalogue.clusterable() if f.log_allowed
        ]
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
        if len(data.get("features") or ()) == 1:
            self.add_error("features", "Choose at least two features, or none for the default.")
        return data

    def params(self):
        from clustering.services import TrainingParams

        data = self.cleaned_data
        options = {
            "features": self.catalogue.ordered(data.get("features") or ()),
            "missing": data["missing"],
            "log_features": self._log_features(),
            "algorithm": data.get("algorithm") or KMEANS,
            "covariance": data.get("covariance") or COVARIANCE_AUTO,
        }
        if data["mode"] == self.MODE_FIXED:
            return TrainingParams(k=data["k"], **options)  # the range is not used
        return TrainingParams(k_min=data["k_min"], k_max=data["k_max"], **options)

    def _log_features(self) -> tuple[str, ...] | None:
        mode = self.cleaned_data.get("log_mode")
        if mode == "none":
            return ()
        if mode == "chosen":
            return tuple(self.cleaned_data.get("log_features") or ())
        return None
