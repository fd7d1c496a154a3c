"""Placing one customer in the active run's segments: segment, confidence, runner-up, why."""

from __future__ import annotations

import pytest

from clustering.forms import PredictForm
from clustering.prediction import predict_many, predict_one
from customers.catalogue import BUILT_IN_CATALOGUE
from customers.models import Customer
from tests.clustering.conftest import client_for
from tests.clustering.helpers import segment_of, train


def centre(run, name: str) -> dict[str, float]:
    """The centre of a segment of ``run``, in the customers' own units."""
    return dict(segment_of(run, name).centroid)


def halfway(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {feature: (a[feature] + b[feature]) / 2 for feature in a}


def test_a_customer_at_the_high_value_centre_is_very_confidently_high_value(trained):
    prediction = predict_one(centre(trained, "High-Value Customers"))

    assert prediction.segment.name == "High-Value Customers"
    assert prediction.band == "very confident"
    assert prediction.confidence > 0.9


def test_a_customer_halfway_between_two_segments_gets_even_odds(trained):
    row = halfway(centre(trained, "High-Value Customers"), centre(trained, "Potential Targets"))

    prediction = predict_one(row)

    assert prediction.confidence == pytest.approx(0.5, abs=0.03)
    assert prediction.runner_up_probability == pytest.approx(prediction.confidence, abs=1e-3)
    pair = {prediction.segment.name, prediction.runner_up.name}
    assert pair == {"High-Value Customers", "Potential Targets"}


def test_segment_and_runner_up_probabilities_never_add_up_to_more_than_one(trained):
    rows = list(Customer.objects.values(*trained.features))
    rows.append(halfway(centre(trained, "Budget Shoppers"), centre(trained, "Loyal Customers")))

    for prediction in predict_many(rows):
        assert prediction.runner_up.id != prediction.segment.id
        assert prediction.runner_up_probability <= prediction.confidence
        assert prediction.confidence + prediction.runner_up_probability <= 1 + 1e-9


def test_the_explanation_compares_every_feature_of_the_run_with_the_segment_centre(trained):
    loyal = segment_of(trained, "Loyal Customers")
    row = {"age": 30, "annual_income": 50, "spending_score": 40, "purchase_frequency": 60}

    prediction = predict_one(row)

    assert prediction.segment.id == loyal.segment_id
    assert [item.feature for item in prediction.explanation] == trained.features
    for item in prediction.explanation:
        assert item.value == row[item.feature]
        assert item.centroid_value == pytest.approx(loyal.centroid[item.feature], abs=1e-3)
    frequency = prediction.explanation[-1]
    assert frequency.diff_sd > 0  # 60 a year is more than even a loyal customer's usual


def test_predictions_come_from_a_newly_activated_run_at_once(
    trained, django_capture_on_commit_callbacks
):
    row = centre(trained, "Budget Shoppers")
    assert predict_one(row).run_id == trained.id

    with django_capture_on_commit_callbacks(execute=True):
        newer = train(k=3)

    assert predict_one(row).run_id == newer.id


def test_a_renamed_segment_is_predicted_under_its_new_name_without_retraining(trained, marketer):
    row = centre(trained, "Budget Shoppers")
    segment = predict_one(row).segment
    assert segment.name == "Budget Shoppers"

    response = client_for(marketer).post(
        f"/segments/{segment.id}/edit/",
        {"name": "Bargain hunters", "description": "Loves a deal.", "actions_text": "Coupons"},
    )

    assert response.status_code == 302
    prediction = predict_one(row)
    assert (prediction.run_id, prediction.segment.id) == (trained.id, segment.id)
    assert prediction.segment.name == "Bargain hunters"
    assert prediction.segment.actions == ("Coupons",)


# --------------------------------------------------------------------------- unusual customers

FAR_FROM_EVERYONE = {
    "age": 30,
    "annual_income": 100_000,
    "spending_score": 50,
    "purchase_frequency": 10,
}


def test_a_customer_far_from_every_segment_is_flagged_unusual_whatever_the_confidence(trained):
    prediction = predict_one(FAR_FROM_EVERYONE)

    assert prediction.unusual
    assert prediction.confidence > 0.9  # the nearest segment wins by far, yet means little


def test_customers_like_the_ones_trained_on_are_not_unusual(trained):
    rows = list(Customer.objects.values(*trained.features)[:400])

    flagged = sum(p.unusual for p in predict_many(rows))

    assert flagged <= 2  # by construction 1 in 1,000 of the training customers
    assert not predict_one(centre(trained, "Loyal Customers")).unusual


def test_the_prediction_page_warns_about_an_unusual_customer(trained, marketer):
    form = {**FAR_FROM_EVERYONE, "sex": "female"}

    unusual = client_for(marketer).post("/predict/", form).content.decode()
    loyal = {f: round(v) for f, v in centre(trained, "Loyal Customers").items()}
    usual = client_for(marketer).post("/predict/", loyal).content.decode()

    assert "Unusual customer." in unusual
    assert '<strong class="segment-name">Loyal Customers</strong>' in usual
    assert "Unusual customer." not in usual


def test_the_runner_up_of_an_unusual_customer_is_the_next_closest_segment(trained):
    prediction = predict_one(FAR_FROM_EVERYONE)

    # Income 100,000k: the two high-income segments are the closest ones, in this order.
    assert prediction.segment.name == "High-Value Customers"
    assert prediction.runner_up.name == "Potential Targets"
    assert prediction.runner_up_probability == 0.0  # far behind, yet still the next closest


def test_the_headline_of_an_unusual_customer_is_that_it_fits_no_segment(trained, marketer):
    page = client_for(marketer).post("/predict/", FAR_FROM_EVERYONE).content.decode()

    answer = page[page.index('id="prediction"') :]
    assert answer.index("Fits no segment well (unusual)") < answer.index("High-Value Customers")
    assert "Nearest segment" in answer and "The nearest segment's strategy" in answer
    # No "100 % very confident" and no "What to do" that would read as a fit.
    assert 'class="confidence"' not in answer and "badge band-very-confident" not in answer
    assert "What to do" not in answer


def test_a_usual_customer_gets_the_segment_its_confidence_and_what_to_do(trained, marketer):
    loyal = {f: round(v) for f, v in centre(trained, "Loyal Customers").items()}

    page = client_for(marketer).post("/predict/", loyal).content.decode()

    assert "Fits no segment well" not in page and "Nearest segment" not in page
    assert 'class="confidence"' in page and "What to do" in page


# --------------------------------------------------------------------------- the form


def predict_form(**values) -> PredictForm:
    definitions = tuple(BUILT_IN_CATALOGUE[key] for key in FAR_FROM_EVERYONE)
    row = {"age": "38", "annual_income": "61", "spending_score": "50", "purchase_frequency": "9"}
    return PredictForm({**row, **values}, definitions=definitions)


def test_the_prediction_form_takes_a_decimal_where_the_feature_allows_one():
    form = predict_form(annual_income="38.5")

    assert form.is_valid(), form.errors
    assert form.row()["annual_income"] == 38.5


@pytest.mark.parametrize(
    "key, label", [("age", "Age"), ("spending_score", "Spending score")], ids=["age", "score"]
)
def test_a_decimal_is_refused_as_not_a_whole_number_where_the_feature_counts(key, label):
    form = predict_form(**{key: "38.5"})

    assert not form.is_valid()
    assert form.errors[key] == [f"{label} must be a whole number."]


def test_the_prediction_page_answers_a_decimal_income_and_refuses_a_decimal_age(trained, marketer):
    client = client_for(marketer)
    row = {"age": "38", "annual_income": "38.5", "spending_score": "50", "purchase_frequency": "9"}

    accepted = client.post("/predict/", row).content.decode()
    refused = client.post("/predict/", {**row, "age": "38.5"}).content.decode()

    assert 'id="prediction"' in accepted and "must be" not in accepted
    assert "Age must be a whole number." in refused and 'id="prediction"' not in refused
