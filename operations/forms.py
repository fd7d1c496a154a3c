from __future__ import annotations

from django import forms

from clustering.algorithms import KMEANS
from clustering.forms import training_feature_choices
from customers.catalogue import Catalogue
from operations.models import NotificationPreference, Schedule
from operations.schedules import ScheduleError, cron_parse, schedule_params


class ScheduleForm(forms.ModelForm):
    """A schedule with its training options; the checks are the retrain form's and
    Celery's cron parser's, so what is saved always runs."""

    interval_hours = forms.IntegerField(
        label="Hours between runs", min_value=1, max_value=24 * 366, required=False
    )
    features = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every number that nearly all customers have, when the run starts.",
    )

    class Meta:
        model = Schedule
        fields = (
            "name",
            "enabled",
            "kind",
            "cron",
            "activation",
            "features",
            "k",
            "k_min",
            "k_max",
            "missing",
            "algorithm",
            "drift_psi_threshold",
        )
        labels = {
            "k": "Fixed number of segments (empty: choose automatically)",
            "k_min": "Try from",
            "k_max": "up to",
            "drift_psi_threshold": "Also retrain when a feature's PSI reaches",
        }
        help_texts = {
            "drift_psi_threshold": "Empty: only on the calendar. 0.25 is a large shift.",
        }
        widgets = {"kind": forms.RadioSelect, "activation": forms.RadioSelect}

    def __init__(self, *args, catalogue: Catalogue, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["features"].choices = training_feature_choices(catalogue)
        self.fields["algorithm"].required = False  # empty: K-Means, as the retrain form
        if self.instance.interval_seconds:
            self.initial["interval_hours"] = self.instance.interval_seconds // 3600

    def clean_algorithm(self) -> str:
        return self.cleaned_data.get("algorithm") or KMEANS

    def clean_cron(self) -> str:
        text = " ".join(self.cleaned_data.get("cron", "").split())
        if self.data.get("kind") == Schedule.Kind.CRON:
            try:
                cron_parse(text)
            except ScheduleError as problem:
                raise forms.ValidationError(str(problem)) from None
        return text

    def clean(self):
        data = super().clean()
        if data.get("kind") == Schedule.Kind.INTERVAL and not data.get("interval_hours"):
            self.add_error("interval_hours", "Say how many hours between runs.")
        if data.get("k_min") and data.get("k_max") and data["k_min"] > data["k_max"]:
            self.add_error("k_max", "The upper end must not be below the lower end.")
        if len(data.get("features") or ()) == 1:
            self.add_error("features", "Choose at least two features, or none for the default.")
        if data.get("drift_psi_threshold") is not None and data["drift_psi_threshold"] <= 0:
            self.add_error("drift_psi_threshold", "The threshold must be above 0.")
        if not self.errors:
            candidate = Schedule(
                k=data.get("k"),
                k_min=data.get("k_min") or 2,
                k_max=data.get("k_max") or 10,
                missing=data.get("missing"),
                features=list(data.get("features") or ()),
                algorithm=data.get("algorithm"),
            )
            try:
                schedule_params(candidate)
            except ValueError as problem:
                message = str(problem)
                self.add_error(None, f"{message[:1].upper()}{message[1:]}.")
        return data

    def save(self, commit: bool = True) -> Schedule:
        schedule = super().save(commit=False)
        hours = self.cleaned_data.get("interval_hours")
        schedule.interval_seconds = hours * 3600 if hours else None
        schedule.features = list(self.cleaned_data.get("features") or ())
        return schedule


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = NotificationPreference
        fields = ("email", "dashboard")
