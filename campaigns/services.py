"""Database work on campaigns: freeze an audience (the stored seeded draw), export it,
and import the outcomes that come back."""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import F

from audit.services import strategy_version_current
from campaigns.draw import draw_groups
from campaigns.models import CAMPAIGN_NAME_MAX_LENGTH, Campaign, CampaignMember
from clustering.models import Cluster, ClusterAssignment, Segment, TrainingRun
from clustering.selectors import RangeFilter, segment_strategy_text
from customers.catalogue import SOURCE_FIELD, SOURCE_PURCHASES, Feature
from customers.csv_format import has_hidden_characters
from customers.selectors import catalogue_current
from customers.services import SafeCsvWriter
from purchases.models import CustomerRfm
from purchases.rfm import GROUP_BY_KEY

MEMBER_BATCH = 5_000
# A control group above half the audience contacts fewer customers than it holds back.
CONTROL_SHARE_MAX = 0.5
# The largest cost per contact the column holds (12 digits, 4 after the point).
COST_MAX = Decimal("99999999")


class CampaignInvalid(Exception):
    """The campaign cannot be created as asked; ``errors`` says why, by field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class CampaignSpec:
    """What a marketer asks for; the form, the command and the tests build one."""

    name: str
    targets: tuple  # segment ids, or RFM group keys with target=rfm
    target: str = Campaign.Target.SEGMENTS
    control_share: float = 0.1
    cost_per_contact: Decimal = Decimal("0")
    channel: str = Campaign.Channel.EMAIL
    min_confidence: float | None = None
    filters: dict = field(default_factory=dict)  # feature key -> (low or None, high or None)
    categories: dict = field(default_factory=dict)  # categorical feature key -> values
    seed: int | None = None


def _spec_errors(spec: CampaignSpec) -> dict[str, str]:
    errors = {}
    name = spec.name.strip()
    if not name:
        errors["name"] = "Give the campaign a name."
    elif len(name) > CAMPAIGN_NAME_MAX_LENGTH:
        errors["name"] = f"Keep the name within {CAMPAIGN_NAME_MAX_LENGTH} characters."
    elif has_hidden_characters(name):
        errors["name"] = "The name contains a control or text-direction character."
    elif Campaign.objects.filter(name=name).exists():
        errors["name"] = f"A campaign called “{name}” exists already."
    if not (0 < spec.control_share <= CONTROL_SHARE_MAX):
        errors["control_share"] = (
            f"The control group must be more than 0 % and at most {CONTROL_SHARE_MAX:.0%} "
            "of the audience: without one nothing can be measured."
        )
    if not spec.cost_per_contact.is_finite() or not 0 <= spec.cost_per_contact <= COST_MAX:
        errors["cost_per_contact"] = f"The cost per contact must be from 0 to {COST_MAX:,}."
    if spec.channel not in Campaign.Channel.values:
        errors["channel"] = f"Choose one of {', '.join(Campaign.Channel.values)}."
    if spec.min_confidence is not None and not (0 <= spec.min_confidence <= 1):
        errors["min_confidence"] = "The least confidence is a share between 0 and 1."
    if not spec.targets:
        errors["targets"] = "Choose at least one segment or RFM group."
    catalogue = catalogue_current()
    for key, (low, high) in spec.filters.items():
        if key not in catalogue or key not in {f.key for f in catalogue.numeric()}:
            errors[f"filter_{key}"] = f"“{key}” is not a numeric feature."
        elif low is not None and high is not None and low > high:
            errors[f"filter_{key}"] = f"{catalogue[key].label}: “from” is above “to”."
    categorical = {f.key for f in catalogue.categorical()}
    for key, values in spec.categories.items():
        if key not in categorical:
            errors[f"category_{key}"] = f"“{key}” is not a category feature."
        elif not values:
            errors[f"category_{key}"] = f"{catalogue[key].label}: give at least one value."
    return errors


def _expression(feature: Feature):
    """A feature's value for a queryset whose rows have a ``customer``."""
    if feature.source == SOURCE_PURCHASES:
        return F(f"customer__rfm__{feature.column}")
    return RangeFilter(feature).expression()


def _filtered(queryset, spec: CampaignSpec):
    """Narrow a queryset whose rows have a ``customer`` to the spec's feature ranges and
    category values."""
    catalogue = catalogue_current()
    for key, values in spec.categories.items():
        feature = catalogue[key]
        path = (
            f"customer__{key}" if feature.source == SOURCE_FIELD else f"customer__attributes__{key}"
        )
        queryset = queryset.filter(**{f"{path}__in": list(values)})
    for key, (low, high) in spec.filters.items():
        if low is None and high is None:
            continue
        name = f"range_{key}"
        queryset = queryset.alias(**{name: _expression(catalogue[key])})
        if low is not None:
            queryset = queryset.filter(**{f"{name}__gte": low})
        if high is not None:
            queryset = queryset.filter(**{f"{name}__lte": high})
    return queryset


@dataclass(frozen=True)
class _Audience:
    customer_pks: np.ndarray
    strata: np.ndarray  # stratum keys
    confidence: list
    strata_info: list[dict]
    run: TrainingRun | None


def _segment_audience(spec: CampaignSpec) -> _Audience:
    run = TrainingRun.objects.filter(is_active=True).defer("projection").first()
    if run is None:
        raise CampaignInvalid({"targets": "There is no active model: train one first."})
    ids = [int(i) for i in spec.targets]
    clusters = {
        c.segment_id: c
        for c in Cluster.objects.filter(run=run, segment_id__in=ids).select_related("segment")
    }
    missing = [i for i in ids if i not in clusters]
    if missing:
        names = Segment.objects.filter(id__in=missing).values_list("name", flat=True)
        shown = ", ".join(names) or ", ".join(map(str, missing))
        raise CampaignInvalid({"targets": f"Not in the active model: {shown}."})
    unsegmented = [c.segment.name for c in clusters.values() if c.is_noise]
    if unsegmented:
        # HDBSCAN's leftovers share no profile and have no strategy to test.
        raise CampaignInvalid(
            {"targets": f"{unsegmented[0]} is not a segment (no common profile, no strategy)."}
        )
    queryset = ClusterAssignment.objects.filter(run=run, cluster__in=clusters.values())
    if spec.min_confidence is not None:
        queryset = queryset.filter(confidence__gte=spec.min_confidence)
    rows = list(_filtered(queryset, spec).values_list("customer_id", "cluster_id", "confidence"))
    segment_of_cluster = {c.id: s for s, c in clusters.items()}
    strata_info = []
    for segment_id in ids:
        segment = clusters[segment_id].segment
        version = strategy_version_current(segment=segment)
        strata_info.append(
            {
                "key": f"segment:{segment_id}",
                "label": segment.name,
                "segment_id": segment_id,
                "strategy_id": version.strategy_id,
                "strategy": segment_strategy_text(segment),
            }
        )
    return _Audience(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([f"segment:{segment_of_cluster[r[1]]}" for r in rows], dtype=object),
        [r[2] for r in rows],
        strata_info,
        run,
    )


def _rfm_audience(spec: CampaignSpec) -> _Audience:
    unknown = [k for k in spec.targets if k not in GROUP_BY_KEY]
    if unknown:
        raise CampaignInvalid({"targets": f"Unknown RFM groups: {', '.join(unknown)}."})
    queryset = _filtered(CustomerRfm.objects.filter(group__in=spec.targets), spec)
    rows = list(queryset.values_list("customer_id", "group"))
    strata_info = [
        {
            "key": f"rfm:{key}",
            "label": GROUP_BY_KEY[key].name,
            "segment_id": None,
            "strategy_id": f"RFM-{key}",
            "strategy": " | ".join([GROUP_BY_KEY[key].description, *GROUP_BY_KEY[key].actions]),
        }
        for key in spec.targets
    ]
    return _Audience(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([f"rfm:{r[1]}" for r in rows], dtype=object),
        [None] * len(rows),
        strata_info,
        None,
    )


def campaign_create(*, spec: CampaignSpec, user=None) -> Campaign:
    """Create a campaign and freeze its audience: every targeted customer is drawn into
    treatment or control (campaigns.draw) with a stored seed; all or nothing."""
    errors = _spec_errors(spec)
    if errors:
        raise CampaignInvalid(errors)
    try:
        with transaction.atomic():
            return _campaign_freeze(spec, user)
    except IntegrityError:
        # Two people chose the same name at the same moment: the unique index decided.
        if Campaign.objects.filter(name=spec.name.strip()).exists():
            raise CampaignInvalid(
                {"name": f"A campaign called “{spec.name.strip()}” exists already."}
            ) from None
        raise


def _campaign_freeze(spec: CampaignSpec, user) -> Campaign:
    audience = (
        _rfm_audience(spec) if spec.target == Campaign.Target.RFM else _segment_audience(spec)
    )
    if len(audience.customer_pks) == 0:
        raise CampaignInvalid({"targets": "No customer matches these segments and filters."})
    seed = spec.seed if spec.seed is not None else secrets.randbits(62)
    numbers, control = draw_groups(
        audience.customer_pks, audience.strata, seed=seed, control_share=spec.control_share
    )
    for info in audience.strata_info:
        inside = audience.strata == info["key"]
        info["control"] = int(control[inside].sum())
        info["treatment"] = int(inside.sum()) - info["control"]
    campaign = Campaign.objects.create(
        name=spec.name.strip(),
        channel=spec.channel,
        target=spec.target,
        targets=list(spec.targets),
        filters={k: list(v) for k, v in spec.filters.items()},
        categories={k: list(v) for k, v in spec.categories.items()},
        min_confidence=spec.min_confidence,
        control_share=spec.control_share,
        cost_per_contact=spec.cost_per_contact.quantize(Decimal("0.0001")),
        seed=seed,
        run=audience.run,
        strata=audience.strata_info,
        audience=len(audience.customer_pks),
        treatment_size=int((~control).sum()),
        control_size=int(control.sum()),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    members = (
        CampaignMember(
            campaign=campaign,
            customer_id=int(pk),
            stratum=stratum,
            group=CampaignMember.Group.CONTROL if in_control else CampaignMember.Group.TREATMENT,
            draw=float(number),
            confidence=confidence,
        )
        for pk, stratum, number, in_control, confidence in zip(
            audience.customer_pks, audience.strata, numbers, control, audience.confidence
        )
    )
    CampaignMember.objects.bulk_create(members, batch_size=MEMBER_BATCH)
    return campaign


def campaign_draw_check(*, campaign: Campaign) -> bool:
    """Redo the draw from the stored audience and seed: True when it gives the same groups."""
    rows = list(campaign.members.values_list("customer_id", "stratum", "group"))
    pks = np.array([r[0] for r in rows], dtype=np.int64)
    strata = np.array([r[1] for r in rows], dtype=object)
    _numbers, control = draw_groups(
        pks, strata, seed=campaign.seed, control_share=campaign.control_share
    )
    stored = np.array([r[2] == CampaignMember.Group.CONTROL for r in rows], dtype=bool)
    return bool((control == stored).all())


# --------------------------------------------------------------------------- export

EXPORT_GROUPS = ("treatment", "control", "all")
EXPORT_COLUMNS = (
    "customer_id",
    "group",
    "segment",
    "strategy_id",
    "rfm_group",
    "r_score",
    "f_score",
    "m_score",
)


def campaign_export_lines(*, campaign: Campaign, group: str = "treatment") -> Iterator[str]:
    """One row per customer of the group (default: treatment, the customers to contact),
    with the segment's name and the strategy's ID (its text is in the strategies file),
    and the customer's RFM group and scores when a purchase history exists."""
    writer = SafeCsvWriter()
    strata = {s["key"]: s for s in campaign.strata}
    yield writer.row(EXPORT_COLUMNS)
    members = campaign.members.all()
    if group != "all":
        members = members.filter(group=group)
    rows = members.order_by("customer__customer_id").values_list(
        "customer__customer_id",
        "group",
        "stratum",
        "customer__rfm__group",
        "customer__rfm__r_score",
        "customer__rfm__f_score",
        "customer__rfm__m_score",
    )
    for customer_id, member_group, stratum, rfm, r, f, m in rows.iterator(chunk_size=5_000):
        info = strata[stratum]
        rfm_name = GROUP_BY_KEY[rfm].name if rfm in GROUP_BY_KEY else (rfm or "")
        yield writer.row(
            (customer_id, member_group, info["label"], info["strategy_id"], rfm_name, r, f, m)
        )


def campaign_strategy_lines(*, campaign: Campaign) -> Iterator[str]:
    """The strategies file: each strategy's text once, by the ID the audience rows carry."""
    writer = SafeCsvWriter()
    yield writer.row(("strategy_id", "segment", "strategy", "treatment", "control"))
    for info in campaign.strata:
        yield writer.row(
            (
                info["strategy_id"],
                info["label"],
                info["strategy"],
                info["treatment"],
                info["control"],
            )
        )


def parse_control_share(value: float) -> float:
    """A share given as 0.1 or as 10 (per cent)."""
    if not math.isfinite(value):
        raise ValueError("not a number")
    return value / 100 if value >= 1 else value
