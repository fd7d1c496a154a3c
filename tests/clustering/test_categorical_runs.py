"""A categorical attribute through the whole site: training on it, the stored run, the
prediction page and API (a select; an unknown category is a 400 naming the field), the
API's schema, and sex, which is never used for clustering."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from sklearn.metrics import adjusted_rand_score

from clustering.models import ClusterAssignment, TrainingRun
from clustering.prediction import cache_clear
from clustering.tokens import api_token_create
from customers.models import Attribute, Customer
from tests.clustering.helpers import train, train_run

FEATURES = ("age", "annual_income", "channel")


@pytest.fixture
def by_channel(db) -> dict[str, str]:
    """300 customers whose age and income are one bell for everybody; only the channel
    (web / store) sets two groups apart. Returns customer ID -> channel."""
    Attribute.objects.create(key="channel", label="Channel", kind=Attribute.Kind.CATEGORICAL)
    rng = np.random.default_rng(3)
    channels = {}
    rows = []
    for i in range(300):
        channel = "web" if i % 2 else "store"
        channels[f"C-{i:04d}"] = channel
        rows.append(
            Customer(
                customer_id=f"C-{i:04d}",
                age=int(np.clip(rng.normal(40, 8), 18, 90)),
                annual_income=float(np.clip(rng.normal(60, 12), 5, 200)),
                spending_score=50,
                purchase_frequency=10,
                sex="female" if i % 3 else "male",
                attributes={"channel": channel},
            )
        )
    Customer.objects.bulk_create(rows)
    cache_clear()
    return channels


def segment_with(run: TrainingRun, channel: str) -> str:
    """The name of the run's segment whose customers are all of this channel."""
    return next(
        c.segment.name for c in run.clusters.all() if c.category_mix["channel"][0][0] == channel
    )


def test_a_run_on_a_categorical_attribute_finds_the_groups_only_it_separates(by_channel):
    run = train(features=FEATURES, k=2, log_features=())

    assert run.feature_info["channel"]["categories"] == ["store", "web"]
    rows = ClusterAssignment.objects.filter(run=run).values_list(
        "customer__customer_id", "cluster__index"
    )
    truth = [by_channel[cid] for cid, _ in rows]
    assert adjusted_rand_score(truth, [index for _, index in rows]) == 1.0
    # Each segment's card shows the channel mix: one channel each.
    mixes = sorted(c.category_mix["channel"] for c in run.clusters.all())
    assert mixes == [[["store", 1.0]], [["web", 1.0]]]


def test_the_prediction_page_offers_the_categories_and_places_by_channel(
    by_channel, marketer_client
):
    run = train(features=FEATURES, k=2, log_features=())
    store = segment_with(run, "store")

    page = marketer_client.get("/").content.decode()
    assert '<select name="channel"' in page and '<option value="web"' in page
    answer = marketer_client.post(
        "/predict/", {"age": "40", "annual_income": "60", "channel": "store"}
    ).content.decode()
    assert store in answer and "store" in answer

    refused = marketer_client.post(
        "/predict/", {"age": "40", "annual_income": "60", "channel": "phone"}
    ).content.decode()
    assert "Channel: phone is not a category this model knows; use one of: store, web." in refused


def test_the_api_places_by_category_and_an_unknown_one_is_a_400_naming_the_field(
    by_channel, client, marketer
):
    run = train(features=FEATURES, k=2, log_features=())
    web = segment_with(run, "web")
    headers = {"Authorization": f"Bearer {api_token_create(user=marketer, name='crm')[1]}"}

    def post(customer):
        return client.post(
            "/api/predict/", json.dumps(customer), content_type="application/json", headers=headers
        )

    placed = post({"age": 40, "annual_income": 60, "channel": "web"})
    assert placed.status_code == 200, placed.content
    assert placed.json()["segment"]["name"] == web
    centre = {i["feature"]: i["segment_centre"] for i in placed.json()["explanation"]}
    assert centre["channel"] == "web"

    refused = post({"age": 40, "annual_income": 60, "channel": "phone"})
    assert refused.status_code == 400
    assert refused.json()["errors"]["channel"] == [
        "Channel: 'phone' is not a category this model knows; use one of: store, web."
    ]
    schema = client.get("/api/openapi.json", headers=headers).json()
    channel = schema["components"]["schemas"]["Customer"]["properties"]["channel"]
    assert channel["enum"] == ["store", "web", None]


def test_missing_categories_are_left_out_or_become_a_category_of_their_own(by_channel):
    Customer.objects.filter(customer_id__in=["C-0000", "C-0001"]).update(attributes={})

    excluded = train(features=FEATURES, k=2, log_features=(), missing="exclude")
    assert excluded.customers_excluded == 2
    filled = train(features=FEATURES, k=2, log_features=(), missing="median")
    assert filled.customers_excluded == 0
    assert filled.feature_info["channel"]["categories"] == ["store", "web", "(missing)"]


def test_sex_is_refused_for_clustering(by_channel):
    with pytest.raises(CommandError, match="sex: not a feature that can be used for clustering"):
        call_command("train", "--sync", "--features", "age,sex")
    run = train_run(features=("age", "sex"), k=2)
    assert run.status == TrainingRun.Status.FAILED
    assert "Sex cannot be used for clustering" in run.error


def test_the_retrain_form_offers_categorical_attributes_but_never_sex(by_channel, manager_client):
    page = manager_client.get("/").content.decode()
    assert 'value="channel"' in page and "Channel (category)" in page
    assert 'name="features" value="sex"' not in page


def test_drift_of_a_categorical_feature_compares_category_shares(by_channel):
    from operations.monitoring import drift_measure

    run = train(features=FEATURES, k=2, log_features=())
    steady = drift_measure(run=run)
    assert {f["feature"]: f["level"] for f in steady.features}["channel"] == "stable"
    # Half the store customers move to the web, a tenth to a channel the model never saw.
    moved = list(Customer.objects.filter(customer_id__in=[f"C-{i:04d}" for i in range(0, 300, 2)]))
    for n, customer in enumerate(moved):
        if n % 2:
            customer.attributes = {"channel": "web" if n % 10 != 1 else "phone"}
    Customer.objects.bulk_update(moved, ["attributes"])

    report = drift_measure(run=run)

    channel = next(f for f in report.features if f["feature"] == "channel")
    assert channel["level"] == "large" and channel["median_now"] is None
    assert report.changed > 0  # moved customers are now nearest the web segment
    # Customers of the unseen channel are in the PSI, not placed by the model.
    assert report.customers_now == 300 and report.compared < 300


def test_cards_and_members_page_show_the_model_s_category_once_first(by_channel, marketer_client):
    run = train(features=FEATURES, k=2, log_features=())
    store = run.clusters.get(segment__name=segment_with(run, "store"))

    dashboard = marketer_client.get("/").content.decode()
    assert dashboard.count("Channel (in the model)") == 2  # one card per segment
    members = marketer_client.get(f"/segments/{store.segment_id}/").content.decode()
    header = members.split("<thead", 1)[1].split("</thead>", 1)[0]
    assert header.count("Channel") == 1
    rows = members.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    assert "<td>store</td>" in rows and "<td>web</td>" not in rows


def test_segments_carry_over_a_retrain_even_when_a_new_category_renumbers_the_codes(
    by_channel,
):
    first = train(features=FEATURES, k=2, log_features=())
    before = {segment_with(first, ch): ch for ch in ("store", "web")}
    # "app" sorts first: every code of the new run moves up by one.
    Customer.objects.filter(customer_id="C-0000").update(attributes={"channel": "app"})

    second = train(features=FEATURES, k=2, log_features=())

    assert second.feature_info["channel"]["categories"] == ["app", "store", "web"]
    assert {segment_with(second, ch): ch for ch in ("store", "web")} == before


@pytest.mark.parametrize("algorithm", ["hdbscan", "compare"])
def test_every_algorithm_trains_with_a_categorical_feature(by_channel, algorithm):
    run = train(features=FEATURES, log_features=(), algorithm=algorithm)

    assert run.feature_info["channel"]["categories"] == ["store", "web"]
    for cluster in run.clusters.all():
        assert set(cluster.centroid_sd) == set(FEATURES)


def test_a_schedule_may_cluster_on_a_categorical_attribute_too(by_channel, manager_client):
    """The schedule form offers what the retrain form offers."""
    page = manager_client.get("/operations/schedules/new/").content.decode()

    assert 'value="channel"' in page and "Channel (category)" in page
    assert 'value="sex"' not in page
