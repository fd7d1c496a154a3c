"""The campaign form, the outcomes upload and the planning calculator."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from campaigns.models import CAMPAIGN_NAME_MAX_LENGTH, Campaign
from campaigns.services import CONTROL_SHARE_MAX, CampaignSpec
from clustering.models import Cluster, TrainingRun
from customers.catalogue import Catalogue
from customers.forms import PlainFloatField
from purchases.models import CustomerRfm
from purchases.rfm import GROUPS


def _percent_field(label: str, *, required: bool, initial=None, low=0.0, high=100.0, help=""):
    return PlainFloatField(
        label=label,
        required=required,
        initial=initial,
        min_value=low,
        max_value=high,
        help_text=help,
        error_messages={
            "invalid": f"{label} must be a number of per cent.",
            "min_value": f"{label} must be at least %(limit_value)s %%.",
            "max_value": f"{label} must be at most %(limit_value)s %%.",
        },
    )


class CampaignForm(forms.Form):
    """Segments of the active model (or RFM groups), feature ranges as min_<key>/max_<key>."""

    name = forms.CharField(max_length=CAMPAIGN_NAME_MAX_LENGTH)
    channel = forms.ChoiceField(choices=Campaign.Channel.choices)
    target = forms.ChoiceField(
        choices=Campaign.Target.choices,
        widget=forms.RadioSelect,
        initial=Campaign.Target.SEGMENTS,
        label="Target",
    )
    segments = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Segments"
    )
    rfm_groups = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="RFM groups"
    )
    control_percent = _percent_field(
        "Control group",
        required=True,
        initial=10,
        low=0.1,
        high=CONTROL_SHARE_MAX * 100,
        help="Per cent of each segment held back and not contacted, to measure the lift.",
    )
    cost_per_contact = forms.DecimalField(
        min_value=Decimal(0), max_digits=12, decimal_places=4, initial=Decimal("0.50")
    )
    min_confidence_percent = _percent_field(
        "Least confidence",
        required=False,
        help="Only customers placed in their segment with at least this confidence.",
    )

    def __init__(self, *args, run: TrainingRun | None, catalogue: Catalogue, **kwargs):
        super().__init__(*args, **kwargs)
        clusters = (
            Cluster.objects.filter(run=run, is_noise=False).select_related("segment") if run else []
        )
        self.fields["segments"].choices = [
            (str(c.segment_id), f"{c.segment.name} ({c.size:,} customers)")
            for c in sorted(clusters, key=lambda c: -c.size)
        ]
        present = set(CustomerRfm.objects.values_list("group", flat=True).distinct())
        self.fields["rfm_groups"].choices = [(g.key, g.name) for g in GROUPS if g.key in present]
        self.ranges = []
        for feature in catalogue.numeric():
            low, high = f"min_{feature.key}", f"max_{feature.key}"
            for name, end in ((low, "from"), (high, "to")):
                self.fields[name] = PlainFloatField(
                    required=False,
                    label=f"{feature.label} {end}",
                    error_messages={"invalid": f"{feature.label} {end} must be a number."},
                )
            self.ranges.append((feature, self[low], self[high]))
        self.category_features = catalogue.categorical()
        for feature in self.category_features:
            shown = ", ".join(label for _code, label in feature.choices)
            self.fields[f"in_{feature.key}"] = forms.CharField(
                required=False,
                max_length=1_000,
                label=f"{feature.label}, one of",
                help_text=f"Comma separated ({shown})" if shown else "Comma separated values",
            )

    def _categories(self) -> dict[str, tuple[str, ...]]:
        """{key: values} typed as "a, b" (a fixed category takes its labels or codes)."""
        categories = {}
        for feature in self.category_features:
            name = f"in_{feature.key}"
            values = [v.strip() for v in self.cleaned_data.get(name, "").split(",") if v.strip()]
            if not values:
                continue
            if feature.choices:
                codes = {k.casefold(): c for c, label in feature.choices for k in (c, label)}
                unknown = [v for v in values if v.casefold() not in codes]
                if unknown:
                    self.add_error(name, f"Not a {feature.label.lower()}: {', '.join(unknown)}.")
                    continue
                values = [codes[v.casefold()] for v in values]
            categories[feature.key] = tuple(dict.fromkeys(values))
        return categories

    def clean(self):
        data = super().clean()
        chosen = data.get("rfm_groups") if data.get("target") == "rfm" else data.get("segments")
        field = "rfm_groups" if data.get("target") == "rfm" else "segments"
        if "target" in data and not chosen:
            self.add_error(field, "Choose at least one.")
        self.categories = self._categories()
        return data

    def spec(self) -> CampaignSpec:
        data = self.cleaned_data
        rfm = data["target"] == Campaign.Target.RFM
        filters = {}
        for feature, low, high in self.ranges:
            bounds = (data.get(low.name), data.get(high.name))
            if bounds != (None, None):
                filters[feature.key] = bounds
        confidence = data.get("min_confidence_percent")
        return CampaignSpec(
            name=data["name"],
            target=data["target"],
            targets=tuple(data["rfm_groups"]) if rfm else tuple(int(i) for i in data["segments"]),
            control_share=data["control_percent"] / 100,
            cost_per_contact=data["cost_per_contact"],
            channel=data["channel"],
            min_confidence=None if confidence is None or rfm else confidence / 100,
            filters=filters,
            categories=self.categories,
        )

    def add_service_errors(self, errors: dict[str, str]) -> None:
        fields = {
            "name": "name",
            "control_share": "control_percent",
            "cost_per_contact": "cost_per_contact",
            "channel": "channel",
            "min_confidence": "min_confidence_percent",
            "targets": "rfm_groups" if self.cleaned_data.get("target") == "rfm" else "segments",
        }
        for key, message in errors.items():
            self.add_error(fields.get(key), message)


class OutcomesForm(forms.Form):
    file = forms.FileField(label="Outcomes CSV")


class PlanForm(forms.Form):
    """The playbook's example as the starting values: everyone (5,000 at 2 %) against the
    High-Value Customers (850 at 12 %), $500 an order."""

    everyone_customers = forms.IntegerField(min_value=0, initial=5000, label="Everyone: customers")
    everyone_conversion = _percent_field("Everyone: expected conversion", required=True, initial=2)
    segment = forms.ChoiceField(required=False, label="Segment")
    segment_customers = forms.IntegerField(
        min_value=0,
        required=False,
        initial=850,
        label="Segment: customers",
        help_text="Blank: the chosen segment's size in the active model.",
    )
    # The segment whose size the size box holds: choosing another one fills in its size.
    shown_segment = forms.CharField(required=False, widget=forms.HiddenInput)
    segment_conversion = _percent_field("Segment: expected conversion", required=True, initial=12)
    order_value = PlainFloatField(min_value=0, initial=500, label="Order value")
    cost_per_contact = PlainFloatField(min_value=0, initial=1, label="Cost per contact")

    def __init__(self, *args, clusters: list[Cluster] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.sizes = {str(c.segment_id): c.size for c in clusters}
        self.names = {str(c.segment_id): c.segment.name for c in clusters}
        self.fields["segment"].choices = [("", "High-Value Customers (the playbook's example)")] + [
            (str(c.segment_id), f"{c.segment.name} ({c.size:,} customers)") for c in clusters
        ]

    def clean(self):
        data = super().clean()
        chosen = data.get("segment")
        self.size_from_segment = chosen in self.sizes and (
            data.get("segment_customers") is None or chosen != data.get("shown_segment")
        )
        if self.size_from_segment:
            data["segment_customers"] = self.sizes[chosen]
            data["shown_segment"] = chosen
        elif data.get("segment_customers") is None:
            self.add_error("segment_customers", "Enter the segment's size, or choose a segment.")
        return data

    def with_segment_size(self) -> PlanForm:
        """The same form showing the chosen segment's size in the size box."""
        data = self.data.copy()
        data["segment_customers"] = str(self.cleaned_data["segment_customers"])
        data["shown_segment"] = self.cleaned_data["shown_segment"]
        form = PlanForm(data, clusters=[])
        form.sizes, form.names = self.sizes, self.names
        form.fields["segment"].choices = self.fields["segment"].choices
        form.is_valid()
        form.size_from_segment = True  # the page still has the old size in its box
        return form

    def segment_name(self) -> str:
        return self.names.get(self.cleaned_data.get("segment") or "", "High-Value Customers")
