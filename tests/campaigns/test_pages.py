"""The campaign pages: create, export, import outcomes, read the lift; the calculator."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import Campaign, Outcome
from tests.campaigns.helpers import make_campaign, planted_outcomes, two_segments
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_marketer_creates_a_campaign_on_two_segments(trained, marketer_client, marketer):
    first, second = two_segments(trained)

    response = marketer_client.post(
        reverse("campaigns:campaign_new"),
        {
            "name": "Premium launch",
            "channel": "email",
            "target": "segments",
            "segments": [first.id, second.id],
            "control_percent": "10",
            "cost_per_contact": "0.50",
        },
    )

    campaign = Campaign.objects.get(name="Premium launch")
    assert response.status_code == 302
    assert response.url == reverse("campaigns:campaign_detail", args=[campaign.id])
    assert campaign.created_by == marketer and campaign.control_share == pytest.approx(0.1)
    page = marketer_client.get(response.url).content.decode()
    assert "by mia" in page and "No outcomes yet" in page


def test_the_form_says_what_is_wrong_and_creates_nothing(trained, marketer_client):
    response = marketer_client.post(
        reverse("campaigns:campaign_new"),
        {
            "name": "",
            "channel": "email",
            "target": "segments",
            "control_percent": "80",
            "cost_per_contact": "-1",
            "min_age": "abc",
            "in_sex": "robot",
        },
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "Choose at least one." in page
    assert "at most 50.0 %" in page
    assert "Age from must be a number." in page
    assert "Not a sex: robot." in page
    assert not Campaign.objects.exists()


def test_a_feature_range_on_the_form_narrows_the_audience(trained, marketer_client):
    first, _second = two_segments(trained)
    marketer_client.post(
        reverse("campaigns:campaign_new"),
        {
            "name": "Young",
            "channel": "sms",
            "target": "segments",
            "segments": [first.id],
            "control_percent": "10",
            "cost_per_contact": "0",
            "max_age": "30",
            "in_sex": "Female",
        },
    )

    campaign = Campaign.objects.get(name="Young")
    assert campaign.filters == {"age": [None, 30.0]}
    assert campaign.categories == {"sex": ["female"]}
    assert all(s == "female" for s in campaign.members.values_list("customer__sex", flat=True))
    assert all(a <= 30 for a in campaign.members.values_list("customer__age", flat=True))


def test_export_downloads_the_treatment_group(trained, marketer_client):
    campaign = make_campaign(trained)

    response = marketer_client.get(reverse("campaigns:campaign_export", args=[campaign.id]))

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Disposition"].endswith('-treatment.csv"')
    assert len(rows) == campaign.treatment_size


def test_uploading_outcomes_shows_the_lift_per_segment(trained, marketer_client, marketer):
    campaign = make_campaign(trained, control_share=0.3)
    first, second = (s["label"] for s in campaign.strata)
    text = planted_outcomes(campaign, {first: (0.9, 0.1), second: (0.2, 0.2)})

    response = marketer_client.post(
        reverse("campaigns:outcomes_upload", args=[campaign.id]),
        {"file": SimpleUploadedFile("results.csv", text.encode(), "text/csv")},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Ignored columns: campaign_code" in page
    assert "significant, the interval does not include zero" in page
    assert "not significant, the interval includes zero" in page
    assert "Newcomb" in page and "Welch" in page
    assert campaign.last_import.imported_by == marketer
    # Money reads as money: thousands grouped, two decimals (incremental revenue, cost).
    assert re.search(r"<td>\d{1,3}(,\d{3})+\.\d\d <span", page)


def test_a_bad_outcomes_file_is_reported_by_row_and_column(trained, marketer_client):
    campaign = make_campaign(trained)
    customer_id = campaign.members.values_list("customer__customer_id", flat=True).first()
    text = f"customer_id,converted\n{customer_id},sometimes\n"

    response = marketer_client.post(
        reverse("campaigns:outcomes_upload", args=[campaign.id]),
        {"file": SimpleUploadedFile("bad.csv", text.encode(), "text/csv")},
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "nothing was imported" in page
    assert "<td>2</td><td>converted</td>" in page
    assert not Outcome.objects.exists()


def test_someone_without_the_permission_cannot_import_outcomes(trained, make_user):
    campaign = make_campaign(trained)
    viewer = client_for(make_user("vic", perms=("campaigns.view_campaign",)))

    response = viewer.post(
        reverse("campaigns:outcomes_upload", args=[campaign.id]),
        {"file": SimpleUploadedFile("o.csv", b"customer_id,converted\n", "text/csv")},
    )

    assert response.status_code == 403


def test_the_segment_card_summarises_the_last_campaigns(trained, marketer_client):
    campaign = make_campaign(trained, control_share=0.3)
    first, second = (s["label"] for s in campaign.strata)
    text = planted_outcomes(campaign, {first: (0.9, 0.1), second: (0.2, 0.2)})
    marketer_client.post(
        reverse("campaigns:outcomes_upload", args=[campaign.id]),
        {"file": SimpleUploadedFile("results.csv", text.encode(), "text/csv")},
    )

    page = marketer_client.get(reverse("clustering:dashboard")).content.decode()

    segment_id = campaign.strata[0]["segment_id"]
    assert f'id="segment-{segment_id}-campaigns"' in page
    assert "Campaigns, last campaign: +" in page and "95 % CI" in page


def test_the_planning_calculator_starts_with_the_playbook_example(trained, marketer_client):
    page = marketer_client.get(reverse("campaigns:plan")).content.decode()

    assert "High-Value Customers costs 83 % less (4,150.00 saved), for 2 more sales" in page
    assert "50,000" in page and "51,000" in page


def test_the_planning_calculator_answers_htmx_with_the_result_only(trained, marketer_client):
    first, _second = two_segments(trained)
    cluster = trained.clusters.get(segment=first)
    response = marketer_client.get(
        reverse("campaigns:plan"),
        {
            "everyone_customers": "400",
            "everyone_conversion": "2",
            "segment": first.id,
            "segment_customers": "",
            "segment_conversion": "10",
            "order_value": "100",
            "cost_per_contact": "2",
        },
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert "<html" not in page and 'id="plan-result"' in page
    assert f"<td>{cluster.size}</td>" in page  # the segment's size from the active model
    assert first.name in page
    # ... and the size box shows it (an out-of-band swap).
    assert f'name="segment_customers" value="{cluster.size}"' in page
    assert 'hx-swap-oob="true"' in page


def test_a_size_typed_for_the_chosen_segment_is_kept(trained, marketer_client):
    first, _second = two_segments(trained)
    response = marketer_client.get(
        reverse("campaigns:plan"),
        {
            "everyone_customers": "400",
            "everyone_conversion": "2",
            "segment": first.id,
            "shown_segment": first.id,
            "segment_customers": "77",
            "segment_conversion": "10",
            "order_value": "100",
            "cost_per_contact": "2",
        },
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert "<td>77</td>" in page and "hx-swap-oob" not in page


def test_the_campaign_page_redoes_the_draw_on_request(trained, marketer_client):
    campaign = make_campaign(trained)

    page = marketer_client.get(
        reverse("campaigns:campaign_detail", args=[campaign.id]), {"check": "draw"}
    ).content.decode()

    assert "the draw, redone from the seed, gives the same groups" in page


def test_before_any_outcome_the_page_shows_groups_and_cost_not_a_lift_of_zeros(
    trained, marketer_client
):
    """Before results come back, a lift of +0.0 points and an ROI of -100 % per segment
    read as a failed campaign; the page shows each group's size and the cost only."""
    campaign = make_campaign(trained, control_share=0.2)

    page = marketer_client.get(reverse("campaigns:campaign_detail", args=[campaign.id]))
    html = page.content.decode()

    assert "No outcomes yet" in html
    assert "-100 %" not in html and "0 of " not in html
    assert "not significant, the interval includes zero" not in html
    treatment = sum(s["treatment"] for s in campaign.strata)
    assert f"{treatment:,} customers" in html
