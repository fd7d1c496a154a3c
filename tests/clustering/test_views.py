"""The marketing pages through the test client: who may do what, htmx fragments, forms."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.utils.html import escape

from clustering.models import ClusterAssignment, RunComparison, Segment, TrainingRun
from clustering.services import (
    TrainingParams,
    training_run_claim,
    training_run_fail,
    training_run_start,
)
from customers.models import Customer
from tests.clustering.helpers import (
    CAMPAIGN_HEADER,
    FEATURES,
    PLAYBOOK,
    segment_of,
    train,
    train_run,
)
from tests.customers.factories import CustomerFactory

HX = {"HTTP_HX_REQUEST": "true"}
HIGH_VALUE = {
    "age": "35",
    "annual_income": "120",
    "spending_score": "85",
    "purchase_frequency": "8",
}
RETRAIN = {
    "mode": "auto",
    "k_min": "2",
    "k_max": "10",
    "features": list(FEATURES),
    "missing": "exclude",
    "log_mode": "auto",
}
# The ID cell links to the customer's page.
CUSTOMER_ID = re.compile(r"<tr><td><a href=\"/customers/\d+/\">(DEMO-\d+)</a></td>")


def text(response) -> str:
    return response.content.decode()


def ids_shown(response) -> list[str]:
    """Customer IDs in the members table, top to bottom."""
    return CUSTOMER_ID.findall(text(response))


# --------------------------------------------------------------------------- who may do what


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/predict/",
        "/segments/1/",
        "/segments/1/edit/",
        "/segments/1/export.csv",
        "/runs/",
        "/runs/compare/",
        "/runs/1/",
        "/runs/1/status/",
    ],
)
def test_an_anonymous_visitor_is_sent_to_sign_in(client, db, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"/accounts/login/?next={url}"


def test_a_marketer_sees_the_segment_cards_with_their_strategies(trained, marketer_client):
    response = marketer_client.get("/")

    assert response.status_code == 200
    for segment in Segment.objects.filter(is_active=True):
        assert f'id="segment-{segment.id}"' in text(response)
        assert escape(segment.name) in text(response)
        assert escape(segment.description) in text(response)
        assert escape(segment.actions[0]) in text(response)


def test_the_dashboard_carries_the_chart_data(trained, marketer_client):
    response = marketer_client.get("/")

    found = re.search(
        r'<script id="chart-data" type="application/json">(.*?)</script>', text(response)
    )
    assert found
    charts = json.loads(found.group(1))
    assert charts["chosen_k"] == 4
    assert {segment["name"] for segment in charts["segments"]} == PLAYBOOK
    assert len(charts["projection"]["x"]) == 400


def test_a_marketer_may_not_start_a_retrain(trained, marketer_client):
    response = marketer_client.post("/runs/start/", RETRAIN)

    assert response.status_code == 403
    assert TrainingRun.objects.count() == 1


def test_a_marketer_may_not_activate_a_run(trained, marketer_client):
    older = trained
    newer = train(k=3)

    response = marketer_client.post(f"/runs/{older.id}/activate/")

    assert response.status_code == 403
    assert TrainingRun.objects.get(is_active=True) == newer


def test_a_manager_starts_a_retrain_that_waits_for_the_worker(
    trained, manager_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = manager_client.post("/runs/start/", RETRAIN)

    run = TrainingRun.objects.get(status=TrainingRun.Status.PENDING)
    assert response.status_code == 302
    assert response.url == f"/runs/{run.id}/"
    assert len(queued) == 1  # the task goes to the broker once the request has committed
    assert (run.features, run.k_requested, run.created_by.username) == (
        list(FEATURES),
        None,
        "max",
    )


def test_a_fixed_number_of_segments_ignores_a_leftover_range(
    trained, manager_client, django_capture_on_commit_callbacks
):
    form = {**RETRAIN, "mode": "fixed", "k": "5", "k_min": "25", "k_max": ""}

    with django_capture_on_commit_callbacks():
        manager_client.post("/runs/start/", form)

    run = TrainingRun.objects.get(status=TrainingRun.Status.PENDING)
    assert (run.k_requested, run.k_min, run.k_max) == (5, 5, 5)


def test_the_retrain_form_records_a_chosen_mixture_covariance_type(
    trained, manager_client, django_capture_on_commit_callbacks
):
    form = {**RETRAIN, "algorithm": "gmm", "covariance": "diag"}

    with django_capture_on_commit_callbacks():
        manager_client.post("/runs/start/", form)

    run = TrainingRun.objects.get(status=TrainingRun.Status.PENDING)
    assert (run.algorithm_requested, run.covariance_requested) == ("gmm", "diag")


def test_the_browser_is_not_told_to_refuse_a_fixed_number_over_the_unused_range(
    trained, manager_client
):
    page = text(manager_client.get("/"))

    k_min = re.search(r'<input type="number" name="k_min"[^>]*>', page).group()
    assert "required" not in k_min and "max=" not in k_min and "min=" not in k_min


def test_an_automatic_choice_needs_both_ends_of_the_range(trained, manager_client):
    form = {**RETRAIN, "k_min": ""}

    response = manager_client.post("/runs/start/", form, **HX)

    assert "Give both ends of the range." in text(response)
    assert not TrainingRun.objects.filter(status=TrainingRun.Status.PENDING).exists()


def test_a_fixed_number_below_two_gets_one_clear_message(trained, manager_client):
    form = {**RETRAIN, "mode": "fixed", "k": "1"}

    response = manager_client.post("/runs/start/", form, **HX)

    assert "Ensure this value is greater than or equal to 2." in text(response)
    assert "Give the number of segments" not in text(response)
    assert not TrainingRun.objects.filter(status=TrainingRun.Status.PENDING).exists()


def test_a_manager_rolls_back_to_an_earlier_run(trained, manager_client, manager):
    train(k=3)

    response = manager_client.post(f"/runs/{trained.id}/activate/", {"confirm": "yes"}, follow=True)

    assert TrainingRun.objects.get(is_active=True) == trained
    assert TrainingRun.objects.get(is_active=True).activated_by == manager
    assert f"Run {trained.id} is now the active model." in text(response)


# --------------------------------------------------------------------------- predict


def test_without_javascript_the_answer_comes_with_its_explanation_open(trained, marketer_client):
    page = text(marketer_client.post("/predict/", HIGH_VALUE))

    assert '<details class="help" id="metric-help" open>' in page
    assert 'href="#metric-help"' in page


def test_an_htmx_prediction_returns_only_the_answer_panel(trained, marketer_client):
    response = marketer_client.post("/predict/", HIGH_VALUE, **HX)

    assert response.status_code == 200
    assert "<html" not in text(response)
    assert '<strong class="segment-name">High-Value Customers</strong>' in text(response)
    assert re.search(r'<strong class="confidence">\d+ %</strong>', text(response))
    assert "very confident" in text(response)


def test_a_prediction_without_javascript_renders_the_whole_page(trained, marketer_client):
    response = marketer_client.post("/predict/", HIGH_VALUE)

    assert response.status_code == 200
    assert "<html" in text(response)
    assert '<strong class="segment-name">High-Value Customers</strong>' in text(response)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("age", "300", "Age must be at most 110."),
        ("spending_score", "", "Enter the customer&#x27;s spending score."),
        ("annual_income", "lots", "Annual income (k) must be a number."),
    ],
)
def test_an_impossible_value_is_answered_with_a_message_at_its_field(
    trained, marketer_client, field, value, message
):
    response = marketer_client.post("/predict/", {**HIGH_VALUE, field: value}, **HX)

    assert response.status_code == 200
    assert f'id="id_{field}_error"' in text(response)
    assert message in text(response)
    assert 'class="prediction"' not in text(response)


# --------------------------------------------------------------------------- segment edit


@pytest.fixture
def budget(trained) -> Segment:
    return Segment.objects.get(name="Budget Shoppers")


def test_editing_a_segment_in_place_shows_its_form(budget, marketer_client):
    response = marketer_client.get(f"/segments/{budget.id}/edit/", **HX)

    assert response.status_code == 200
    assert "<html" not in text(response)
    assert f'hx-post="/segments/{budget.id}/edit/"' in text(response)
    assert 'value="Budget Shoppers"' in text(response)


def test_saving_a_segment_returns_its_card_with_the_new_name(budget, marketer_client):
    data = {"name": "Bargain hunters", "description": "Loves a deal.", "actions_text": "A\n\nB "}

    response = marketer_client.post(f"/segments/{budget.id}/edit/", data, **HX)

    assert response.status_code == 200
    assert text(response).lstrip().startswith('<article class="card"')
    assert f'<h3 id="segment-{budget.id}-name">Bargain hunters</h3>' in text(response)
    budget.refresh_from_db()
    assert (budget.name, budget.description, budget.actions) == (
        "Bargain hunters",
        "Loves a deal.",
        ["A", "B"],
    )


def test_someone_without_the_change_permission_cannot_edit_a_segment(budget, viewer_client):
    response = viewer_client.post(
        f"/segments/{budget.id}/edit/", {"name": "Mine", "description": ""}, **HX
    )

    assert response.status_code == 403
    budget.refresh_from_db()
    assert budget.name == "Budget Shoppers"


def test_a_segment_needs_a_name(budget, marketer_client):
    response = marketer_client.post(
        f"/segments/{budget.id}/edit/", {"name": "  ", "description": "x"}, **HX
    )

    assert response.status_code == 200
    assert 'id="id_name_error"' in text(response)
    assert "A segment needs a name." in text(response)
    budget.refresh_from_db()
    assert budget.name == "Budget Shoppers"


# --------------------------------------------------------------------------- run status


@pytest.fixture
def running(db) -> TrainingRun:
    run = training_run_start(params=TrainingParams(), enqueue=False)
    assert training_run_claim(run_id=run.id)
    return run


def test_the_status_of_a_running_run_polls_every_second(running, manager_client):
    response = manager_client.get(f"/runs/{running.id}/status/", **HX)

    assert 'hx-trigger="every 1s"' in text(response)
    assert f'hx-get="/runs/{running.id}/status/?was=running"' in text(response)


def test_the_status_of_a_finished_run_stops_polling(running, manager_client):
    training_run_fail(run_id=running.id, message="The worker gave up.")

    response = manager_client.get(f"/runs/{running.id}/status/", **HX)

    assert response.status_code == 200
    assert "hx-trigger" not in text(response)
    assert "The worker gave up." in text(response)


def test_a_run_that_finished_while_polled_never_reloads_the_page(running, manager_client):
    training_run_fail(run_id=running.id, message="The worker gave up.")

    response = manager_client.get(
        f"/runs/{running.id}/status/?was=running", headers={"HX-Request": "true"}
    )

    assert "HX-Refresh" not in response.headers
    assert "The worker gave up." in text(response)
    assert "hx-trigger" not in text(response)


def test_a_run_with_too_few_customers_explains_why_on_its_page(db, manager_client):
    CustomerFactory.create_batch(3)
    run = train_run()

    response = manager_client.get(f"/runs/{run.id}/")

    assert response.status_code == 200
    assert "This run failed: Only 3 customer(s)" in text(response)


# --------------------------------------------------------------------------- members


@pytest.fixture
def loyal(trained):
    """The Loyal cluster of the active run: more than two pages of members."""
    cluster = segment_of(trained, "Loyal Customers")
    assert cluster.size > 100
    return cluster


def test_zero_purchases_a_year_reads_as_zero_not_unknown(loyal, marketer_client):
    member = ClusterAssignment.objects.filter(cluster=loyal).select_related("customer").first()
    Customer.objects.filter(pk=member.customer.pk).update(purchase_frequency=0)

    page = text(
        marketer_client.get(f"/segments/{loyal.segment_id}/", {"q": member.customer.customer_id})
    )

    row = re.search(
        rf"<tr><td><a [^>]*>{member.customer.customer_id}</a></td>.*?</tr>", page, re.S
    ).group()
    assert "<td>0</td>" in row and "–" not in row


def test_the_members_table_shows_every_feature_of_a_customer_and_sex_in_words(
    loyal, marketer_client
):
    customer = ClusterAssignment.objects.filter(cluster=loyal).first().customer
    Customer.objects.filter(pk=customer.pk).update(sex="female")

    page = text(marketer_client.get(f"/segments/{loyal.segment_id}/", {"q": customer.customer_id}))

    row = re.search(
        rf"<tr><td><a [^>]*>{customer.customer_id}</a></td>.*?</tr>", page, re.S
    ).group()
    # The ID cell holds a link and the confidence cell a badge: neither is plain text.
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells == [
        str(customer.age),
        f"{customer.annual_income}",
        str(customer.spending_score),
        str(customer.purchase_frequency),
        "Female",
    ]


def test_pages_answer_head_requests_for_uptime_checks(trained, marketer_client):
    assert marketer_client.head("/").status_code == 200
    assert marketer_client.head(f"/runs/{trained.id}/").status_code == 200


def member_ids(cluster, *order: str, **filters) -> list[str]:
    members = ClusterAssignment.objects.filter(cluster=cluster, **filters)
    return list(
        members.order_by(*order, "customer_id").values_list("customer__customer_id", flat=True)
    )


def test_members_are_listed_fifty_to_a_page(loyal, marketer_client):
    url = f"/segments/{loyal.segment_id}/"

    first = marketer_client.get(url)
    last = marketer_client.get(url, {"page": "3"})

    expected = member_ids(loyal, "-confidence")
    assert ids_shown(first) == expected[:50]
    assert ids_shown(last) == expected[100:]
    assert "Page 3 of 3" in text(last)


def test_members_can_be_found_by_any_part_of_their_customer_id(loyal, marketer_client):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/", {"q": "00012"})

    expected = member_ids(loyal, "-confidence", customer__customer_id__contains="00012")
    assert 0 < len(expected) < 50
    assert not any(customer_id.startswith("00012") for customer_id in expected)
    assert ids_shown(response) == expected


def test_the_member_search_ignores_case(loyal, marketer_client):
    upper = marketer_client.get(f"/segments/{loyal.segment_id}/", {"q": "DEMO-00001"})
    lower = marketer_client.get(f"/segments/{loyal.segment_id}/", {"q": "demo-00001"})

    assert ids_shown(lower) == ids_shown(upper) != []


def test_members_can_be_filtered_by_confidence_band(loyal, marketer_client):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/", {"band": "confident"})

    expected = member_ids(loyal, "-confidence", confidence__gte=0.7, confidence__lt=0.9)
    assert expected
    assert ids_shown(response) == expected


@pytest.mark.parametrize(
    ("sort", "order"), [("confidence", "confidence"), ("-confidence", "-confidence")]
)
def test_members_can_be_sorted_by_confidence(loyal, marketer_client, sort, order):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/", {"sort": sort})

    assert ids_shown(response) == member_ids(loyal, order)[:50]


@pytest.mark.parametrize("sort", ["annual_income", "income"])
def test_members_can_be_sorted_by_a_feature_by_its_key_or_its_old_name(
    loyal, marketer_client, sort
):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/", {"sort": sort})

    assert ids_shown(response) == member_ids(loyal, "customer__annual_income")[:50]
    assert ids_shown(response) != member_ids(loyal, "-confidence")[:50]


def test_an_unknown_sort_falls_back_to_most_confident_first(loyal, marketer_client):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/", {"sort": "password"})

    assert response.status_code == 200
    assert ids_shown(response) == member_ids(loyal, "-confidence")[:50]


def test_an_htmx_members_request_returns_only_the_table(loyal, marketer_client):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/", {"page": "2"}, **HX)

    assert text(response).lstrip().startswith('<div id="members-table">')
    assert "<html" not in text(response)
    assert "member-search" not in text(response)
    assert ids_shown(response) == member_ids(loyal, "-confidence")[50:100]


# --------------------------------------------------------------------------- export


def test_a_segment_exports_as_csv_with_one_row_per_member(loyal, marketer_client):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/export.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == CAMPAIGN_HEADER
    assert sorted(row[0] for row in rows[1:]) == sorted(member_ids(loyal))
    assert {row[6] for row in rows[1:]} == {"Loyal Customers"}
    first = Customer.objects.get(customer_id=rows[1][0])
    assert rows[1][1:6] == [
        str(first.age),
        f"{first.annual_income:g}",
        str(first.spending_score),
        str(first.purchase_frequency),
        first.sex,
    ]


def test_someone_without_the_export_permission_cannot_export(loyal, viewer_client):
    response = viewer_client.get(f"/segments/{loyal.segment_id}/export.csv")

    assert response.status_code == 403


# --------------------------------------------------------------------------- runs


@pytest.fixture
def second_run(trained) -> TrainingRun:
    """A K=3 run on the same customers, now active."""
    return train(k=3)


def test_comparing_two_runs_follows_every_customer(trained, second_run, marketer_client):
    response = marketer_client.get("/runs/compare/", {"a": trained.id, "b": second_run.id})

    matrix = response.context["matrix"]
    assert len(matrix) == 4 and all(len(row["cells"]) == 3 for row in matrix)
    assert sum(sum(row["cells"]) for row in matrix) == 400
    assert "400 customers are in both runs" in text(response)


def test_comparing_two_runs_counts_who_stayed_in_the_same_segment(
    trained, second_run, marketer_client
):
    def segment_by_customer(run):
        rows = ClusterAssignment.objects.filter(run=run)
        return dict(rows.values_list("customer_id", "cluster__segment_id"))

    before, after = segment_by_customer(trained), segment_by_customer(second_run)
    stayed = sum(before[customer] == after[customer] for customer in before)
    assert 0 < stayed < 400

    response = marketer_client.get("/runs/compare/", {"a": trained.id, "b": second_run.id})

    assert response.context["same_segment"] == stayed
    assert f"{stayed} of them" in text(response)


def test_comparing_the_other_way_round_turns_the_table_over(trained, second_run, marketer_client):
    forward = marketer_client.get("/runs/compare/", {"a": trained.id, "b": second_run.id})
    backward = marketer_client.get("/runs/compare/", {"a": second_run.id, "b": trained.id})

    cells = [row["cells"] for row in forward.context["matrix"]]
    turned = [row["cells"] for row in backward.context["matrix"]]
    assert turned == [list(column) for column in zip(*cells)]
    assert backward.context["same_segment"] == forward.context["same_segment"]


def test_a_retrain_counts_the_moves_from_the_run_it_replaces(trained, second_run):
    stored = RunComparison.objects.get()

    assert (stored.earlier_id, stored.later_id) == (trained.id, second_run.id)
    assert sum(n for _a, _b, n in stored.moves) == 400


def test_the_moves_to_the_next_run_outlive_pruning(customers, settings, marketer_client):
    settings.CLUSTERING_KEEP_ASSIGNMENT_RUNS = 1
    first, second, third = train(k=4), train(k=3), train(k=4)
    assert not ClusterAssignment.objects.filter(run__in=[first, second]).exists()

    kept = marketer_client.get("/runs/compare/", {"a": first.id, "b": second.id})
    lost = marketer_client.get("/runs/compare/", {"a": first.id, "b": third.id})

    assert "400 customers are in both runs" in text(kept)
    assert "assignments were pruned" in text(lost) and "matrix" not in lost.context


def test_a_pruned_run_offers_no_activate_button(customers, settings, manager_client):
    settings.CLUSTERING_KEEP_ASSIGNMENT_RUNS = 1
    first, _second, _third = train(k=4), train(k=3), train(k=4)

    page = text(manager_client.get(f"/runs/{first.id}/"))

    assert "Make this the active model" not in page
    assert "can no longer be made the active model" in page


def test_the_runs_list_shows_every_run_and_which_is_active(trained, second_run, marketer_client):
    response = marketer_client.get("/runs/")

    assert response.status_code == 200
    assert f'<a href="/runs/{trained.id}/">Run {trained.id}</a></td>' in text(response)
    active = f'<a href="/runs/{second_run.id}/">Run {second_run.id}</a> <span class="badge'
    assert active in text(response)


def test_a_run_page_shows_the_score_of_every_k_and_marks_the_chosen_one(trained, marketer_client):
    response = marketer_client.get(f"/runs/{trained.id}/")

    assert response.status_code == 200
    table = re.search(r'<table class="data" id="per-k">.*?</table>', text(response), re.S)
    assert table
    assert re.findall(r"<tr[^>]*><td>(\d+)", table.group(0)) == [str(k) for k in range(2, 11)]
    assert re.findall(r'<tr class="chosen"><td>(\d+) \(chosen\)', table.group(0)) == ["4"]


def test_a_viewer_without_the_edit_permission_does_not_get_the_edit_form(trained, viewer_client):
    segment = trained.clusters.first().segment

    response = viewer_client.get(f"/segments/{segment.id}/edit/", HTTP_HX_REQUEST="true")

    assert response.status_code == 403


def test_an_unknown_confidence_band_is_ignored_on_the_members_page(trained, marketer_client):
    cluster = trained.clusters.first()

    response = marketer_client.get(f"/segments/{cluster.segment_id}/?band=x%26sort%3Dage")

    assert response.status_code == 200
    assert response.context["filters"].band == ""
    assert response.context["page"].paginator.count == cluster.size
