"""The files shops really export: each imports, trains with default options, and gets
segment names that agree with their numbers, with nobody silently left out."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from clustering import naming
from clustering.models import Cluster, TrainingRun
from customers.models import Customer
from tests.customers.real_files import (
    MARKETING_DERIVATIONS,
    mall_file,
    marketing_file,
    wholesale_file,
)

pytestmark = pytest.mark.django_db

CONSUMER_PERSONAS = {a.key for a in naming.ARCHETYPES if a.key != naming.MAINSTREAM}


def import_file(path, *options: str) -> None:
    call_command("import_customers", str(path), *options, "--no-progress", stdout=io.StringIO())


def train_with_default_options() -> TrainingRun:
    call_command("train", sync=True, stdout=io.StringIO())
    run = TrainingRun.objects.get(is_active=True)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return run


def assert_names_agree_with_numbers(run: TrainingRun) -> None:
    """Every persona's conditions hold by 0.5 sd; every described segment is high or low
    on the features its name says, by at least 0.5 sd."""
    for cluster in Cluster.objects.filter(run=run, is_noise=False):  # Unsegmented: no name
        z = cluster.centroid_sd
        if cluster.archetype.startswith(naming.PROFILE_PREFIX):
            signature = cluster.archetype.removeprefix(naming.PROFILE_PREFIX)
            for part in signature.split(";"):
                direction, features = part.split("=")
                for feature in features.split(","):
                    value = z[feature] if direction == "high" else -z[feature]
                    assert value >= naming.SD_THRESHOLD - 1e-9, (cluster.reason, feature)
        elif cluster.archetype == naming.MAINSTREAM:
            assert all(abs(v) < naming.SD_THRESHOLD for v in z.values()), cluster.reason
        else:
            archetype = next(a for a in naming.ARCHETYPES if a.key == cluster.archetype)
            for feature, rule in archetype.conditions:
                if rule == "high":
                    assert z[feature] >= naming.SD_THRESHOLD, (cluster.reason, feature)
                elif rule == "low":
                    assert z[feature] <= -naming.SD_THRESHOLD, (cluster.reason, feature)


def test_a_business_file_trains_on_its_spend_and_gets_no_consumer_personas(tmp_path):
    import_file(wholesale_file(tmp_path / "wholesale.csv"), "--attributes", "all",
                "--categorical", "Channel,Region")  # fmt: skip

    run = train_with_default_options()

    assert set(run.features) == {
        "fresh", "milk", "grocery", "frozen", "detergents_paper", "delicassen"
    }  # fmt: skip
    archetypes = set(Cluster.objects.filter(run=run).values_list("archetype", flat=True))
    assert not archetypes & CONSUMER_PERSONAS
    assert run.customers_excluded == 0
    assert_names_agree_with_numbers(run)
    # The planted retailers (high grocery, milk, detergents) are found as a segment.
    names = " ".join(Cluster.objects.filter(run=run).values_list("segment__name", flat=True))
    assert "grocery" in names.lower()


def test_the_marketing_export_trains_with_derived_features_and_says_who_is_left_out(tmp_path):
    derive = [option for d in MARKETING_DERIVATIONS for option in ("--derive", d)]
    import_file(marketing_file(tmp_path / "marketing.tsv"), "--attributes", "all",
                "--categorical", "Education,Marital_Status", *derive)  # fmt: skip

    run = train_with_default_options()

    assert {"age", "annual_income", "total_spend", "total_purchases"} <= set(run.features)
    blank_income = Customer.objects.filter(annual_income__isnull=True).count()
    assert blank_income > 0
    assert run.customers_excluded == blank_income
    assert run.missing_by_feature["annual_income"] == blank_income
    assert "annual_income" in run.log_features  # money is read on a log scale
    # The customer with an absurd income is no one-person segment.
    assert min(Cluster.objects.filter(run=run).values_list("size", flat=True)) > 10
    assert_names_agree_with_numbers(run)


def test_the_mall_file_without_purchases_trains_on_what_it_has(tmp_path):
    import_file(mall_file(tmp_path / "mall.csv"))

    run = train_with_default_options()

    assert run.features == ["age", "annual_income", "spending_score"]
    assert run.customers_excluded == 0
    assert run.customers_used == 200
    assert_names_agree_with_numbers(run)
    # The classic file's five groups: the two high-income ones get the playbook personas.
    archetypes = set(Cluster.objects.filter(run=run).values_list("archetype", flat=True))
    assert {"high_value", "potential"} <= archetypes
