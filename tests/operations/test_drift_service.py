"""Drift measured on the database against the baseline kept with the run."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from clustering.models import TrainingRun
from customers.models import Customer
from operations import drift
from operations.models import DriftBaseline
from operations.monitoring import drift_measure
from tests.clustering.helpers import train
from tests.operations.helpers import add_customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained_on_1500():
    add_customers(1500, seed=1, prefix="OLD")
    return train(k=4)


def test_a_run_keeps_its_baseline_with_it(trained_on_1500):
    baseline = DriftBaseline.objects.get(run=trained_on_1500)
    assert baseline.from_training
    assert baseline.customers == 1500
    assert set(baseline.edges) == set(trained_on_1500.features)
    assert all(len(shares) == 10 for shares in baseline.shares.values())


def test_customers_as_trained_have_not_drifted(trained_on_1500):
    report = drift_measure()
    assert report.level == drift.STABLE
    assert report.max_psi == pytest.approx(0, abs=1e-9)
    assert (report.changed, report.compared) == (0, 1500)


def test_a_resample_of_the_same_population_does_not_drift(trained_on_1500):
    Customer.objects.all().delete()
    add_customers(1500, seed=2, prefix="NEW")
    report = drift_measure()
    assert all(item["level"] == drift.STABLE for item in report.features), report.features
    assert report.level == drift.STABLE
    assert (report.new_customers, report.gone_customers) == (1500, 1500)


def test_a_planted_income_shift_is_named(trained_on_1500):
    add_customers(1500, seed=1, prefix="OLD", income_shift=40)
    report = drift_measure()
    assert report.level == drift.LARGE
    worst = report.features[0]
    assert worst["feature"] == "annual_income" and worst["level"] == drift.LARGE
    assert worst["median_now"] > worst["median_then"] + 30
    others = {item["feature"]: item["level"] for item in report.features[1:]}
    assert set(others.values()) == {drift.STABLE}
    assert report.changed > 0


def test_the_drift_command_prints_every_feature_as_json(trained_on_1500):
    add_customers(1500, seed=1, prefix="OLD", income_shift=40)
    out = io.StringIO()
    call_command("drift", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["run_id"] == trained_on_1500.id
    assert data["level"] == "large"
    assert [f["feature"] for f in data["features"]][0] == "annual_income"
    assert {f["feature"] for f in data["features"]} == set(trained_on_1500.features)
    assert data["thresholds"]["psi_large"] == drift.PSI_LARGE


def test_a_run_without_a_baseline_gets_one_from_the_customers_now(trained_on_1500):
    DriftBaseline.objects.all().delete()
    report = drift_measure()
    assert report.level == drift.STABLE
    assert not DriftBaseline.objects.get(run=trained_on_1500).from_training


def test_the_dashboard_warns_with_the_features_that_moved(trained_on_1500, manager_client):
    add_customers(1500, seed=1, prefix="OLD", income_shift=40)
    drift_measure()
    page = manager_client.get("/").content.decode()
    assert f"Customers have shifted since run {trained_on_1500.id}" in page
    assert "Annual income (k)</strong> is higher than at training" in page
    assert "above 0.25 a large one" in page


def test_no_warning_without_drift(trained_on_1500, manager_client):
    drift_measure()
    assert "Customers have shifted" not in manager_client.get("/").content.decode()
    assert TrainingRun.objects.filter(is_active=True).count() == 1


def test_a_schedule_retrains_when_drift_passes_its_threshold(trained_on_1500):
    from operations.models import Notification, Schedule, ScheduledRun
    from operations.monitoring import drift_check
    from operations.schedules import schedule_save

    calm = schedule_save(schedule=Schedule(name="Calm", k=4))
    watch = schedule_save(schedule=Schedule(name="Watch", k=4, drift_psi_threshold=0.25))
    assert drift_check(only_if_changed=True).level == drift.STABLE
    assert not ScheduledRun.objects.exists()
    assert drift_check(only_if_changed=True) is None  # nothing changed since

    add_customers(1500, seed=1, prefix="OLD", income_shift=40)
    report = drift_check(only_if_changed=True)
    assert report.level == drift.LARGE
    assert Notification.objects.get(kind=Notification.Kind.DRIFT).subject == (
        f"Customers have shifted since run {trained_on_1500.id}"
    )
    link = ScheduledRun.objects.get()
    assert (link.schedule, link.reason) == (watch, ScheduledRun.Reason.DRIFT)
    assert link.run.status == TrainingRun.Status.PENDING
    assert calm.runs.count() == 0
    # The same drift does not start a second run.
    TrainingRun.objects.filter(id=link.run_id).update(
        status=TrainingRun.Status.FAILED, in_flight=None
    )
    drift_check()
    assert ScheduledRun.objects.count() == 1


def test_customers_missing_a_feature_are_left_out_as_in_training(trained_on_1500):
    Customer.objects.filter(customer_id__in=["OLD-1", "OLD-2"]).update(annual_income=None)
    report = drift_measure()
    assert (report.customers_now, report.compared, report.gone_customers) == (1498, 1498, 2)


def test_imported_attributes_are_read_for_drift(trained_on_1500):
    from customers.models import Attribute

    Attribute.objects.create(key="basket", label="Basket")
    for number, customer in enumerate(Customer.objects.order_by("id")):
        customer.attributes = {"basket": float(number % 50)}
        customer.save(update_fields=["attributes"])
    run = train(features=("annual_income", "basket"), k=3)
    assert drift_measure(run=run).level == drift.STABLE
    Customer.objects.filter(customer_id="OLD-3").update(attributes={"basket": "n/a"})
    report = drift_measure(run=run)
    assert report.customers_now == 1499


def test_a_baseline_kept_in_the_first_format_is_still_read(trained_on_1500):
    import io as bytes_io

    import numpy as np

    baseline = DriftBaseline.objects.get(run=trained_on_1500)
    from operations.monitoring import _unpack

    pks, labels = _unpack(baseline.labels)
    first_format = bytes_io.BytesIO()
    np.savez_compressed(first_format, customer_pks=pks, labels=labels)
    DriftBaseline.objects.filter(id=baseline.id).update(labels=first_format.getvalue())
    report = drift_measure()
    assert (report.compared, report.changed) == (1500, 0)


def _add_strays(count: int) -> None:
    """Customers far from every persona: an HDBSCAN run leaves them Unsegmented."""
    rng = np.random.default_rng(5)
    for i in range(count):
        Customer.objects.create(
            customer_id=f"STRAY-{i}",
            age=int(rng.uniform(18, 110)),
            annual_income=float(rng.uniform(200, 2000)),
            spending_score=int(rng.uniform(1, 100)),
            purchase_frequency=int(rng.uniform(60, 600)),
        )


@pytest.mark.parametrize("without_baseline", [False, True])
def test_unsegmented_customers_of_an_hdbscan_run_have_not_moved(without_baseline):
    """Right after an HDBSCAN run, its Unsegmented customers are still Unsegmented: drift
    must not count them as customers whose nearest segment changed."""
    add_customers(600, seed=1, prefix="OLD")
    _add_strays(30)
    run = train(
        algorithm="hdbscan",
        features=("age", "annual_income", "spending_score", "purchase_frequency"),
        log_features=(),
    )
    assert run.clusters.get(is_noise=True).size > 0
    if without_baseline:
        DriftBaseline.objects.all().delete()

    report = drift_measure()

    assert (report.changed, report.compared) == (0, run.customers_used)
    assert report.level == drift.STABLE
