"""The dashboard's cards, charts and edit form: colours for life, neutral differences, one
date format, no empty chart boxes, and a plain word for a name already taken."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import escape

from clustering.models import Segment, TrainingRun
from clustering.palette import PALETTE
from clustering.selectors import FeatureRow
from tests.clustering.helpers import train

HX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return response.content.decode()


def chart_data(response) -> dict:
    found = re.search(
        r'<script id="chart-data" type="application/json">(.*?)</script>', text(response)
    )
    return json.loads(found.group(1))


# --------------------------------------------------------------------------- colours


def test_the_sizes_chart_follows_the_cards_order_in_the_segments_own_colours(
    trained, marketer_client
):
    response = marketer_client.get("/")

    cards = response.context["cards"]
    charted = chart_data(response)["segments"]
    assert [s["name"] for s in charted] == [card.segment.name for card in cards]
    assert [s["size"] for s in charted] == sorted((s["size"] for s in charted), reverse=True)
    for card, segment in zip(cards, charted):
        colour = PALETTE[card.segment.colour_index]
        assert (segment["hex"], segment["shape"]) == (colour.hex, colour.shape)
        assert f'data-colour="{colour.hex}"' in text(response)


def test_a_segment_s_card_keeps_its_colour_when_a_retrain_reorders_the_clusters(
    trained, marketer_client
):
    before = {card.segment.id: card.colour for card in marketer_client.get("/").context["cards"]}
    train(k=5)

    after = marketer_client.get("/").context["cards"]

    kept = [card for card in after if card.segment.id in before]
    assert kept and all(card.colour == before[card.segment.id] for card in kept)
    assert len({card.colour for card in after}) == 5


# --------------------------------------------------------------------------- differences


def test_differences_from_the_average_are_neutral_for_the_built_in_features(
    trained, marketer_client
):
    response = marketer_client.get("/")

    rows = [row for card in response.context["cards"] for row in card.features]
    assert {row.direction for row in rows} == {"higher", "lower", ""}
    assert {row.tone for row in rows} == {""}
    page = text(response)
    assert 'class="difference higher' in page and 'class="difference lower' in page
    assert not re.search(r'<td class="[^"]*\b(up|down|good|bad)\b', page)


@pytest.mark.parametrize(
    "value, better, tone",
    [(130, "higher", "good"), (70, "higher", "bad"), (70, "lower", "good"), (105, "higher", "")],
)
def test_only_a_feature_with_a_better_direction_reads_as_good_or_bad(value, better, tone):
    assert FeatureRow("Returns kept", "", value, 100, True, better).tone == tone


# --------------------------------------------------------------------------- dates and charts


def test_the_dashboard_says_when_the_model_was_trained_in_the_site_s_date_format(
    trained, marketer_client
):
    TrainingRun.objects.filter(id=trained.id).update(
        finished_at=timezone.now() - timedelta(hours=2)
    )

    line = re.search(r'<p class="model-line">.*?</p>', text(marketer_client.get("/")), re.S)

    assert re.search(
        r'trained <time datetime="[^"]+" title="2\xa0hours ago">'
        r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d</time>",
        line.group(),
    ), line.group()


def test_a_fixed_number_of_segments_shows_no_empty_elbow_or_silhouette_chart(
    customers, marketer_client
):
    train(k=3)

    page = text(marketer_client.get("/"))

    assert 'id="chart-elbow"' not in page and 'id="chart-silhouette"' not in page
    assert 'id="chart-sizes"' in page and 'id="chart-projection"' in page
    assert re.search(
        r'<p class="muted" id="fixed-k-note">The number of segments was fixed at 3', page
    )
    assert page.index('id="fixed-k-note"') < page.index('class="chart-grid"')


def test_a_run_that_tried_several_numbers_shows_both_curves(trained, marketer_client):
    page = text(marketer_client.get("/"))

    assert 'id="chart-elbow"' in page and 'id="chart-silhouette"' in page
    assert 'id="fixed-k-note"' not in page


# --------------------------------------------------------------------------- edit form


@pytest.fixture
def budget(trained) -> Segment:
    return Segment.objects.get(name="Budget Shoppers")


@pytest.mark.parametrize("htmx", [True, False], ids=["in place", "without javascript"])
def test_a_name_another_segment_has_is_refused_in_plain_words_under_the_right_title(
    budget, marketer_client, htmx
):
    data = {"name": " Loyal Customers ", "description": "x", "actions_text": ""}

    response = marketer_client.post(f"/segments/{budget.id}/edit/", data, **(HX if htmx else {}))

    page = text(response)
    assert (
        escape("Another segment is already called “Loyal Customers”; choose another name.") in page
    )
    assert "already exists" not in page
    assert "<h3>Edit “Budget Shoppers”</h3>" in page
    if not htmx:
        assert "<title>Edit Budget Shoppers · Segmentation</title>" in page
    budget.refresh_from_db()
    assert budget.name == "Budget Shoppers"


def test_a_segment_may_keep_its_own_name(budget, marketer_client):
    data = {"name": "Budget Shoppers", "description": "Still budget.", "actions_text": ""}

    response = marketer_client.post(f"/segments/{budget.id}/edit/", data, **HX)

    assert response.status_code == 200 and "already called" not in text(response)
    budget.refresh_from_db()
    assert budget.description == "Still budget."
