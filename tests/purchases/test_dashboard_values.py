"""Lifetime value per segment (on its card) and per RFM group (in the RFM table)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db.models import Avg, Sum

from clustering.models import Cluster, ClusterAssignment, TrainingRun
from purchases.models import CustomerValue
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def valued(db):
    call_command("generate_customers", count=500, seed=12, stdout=io.StringIO())
    call_command("generate_transactions", seed=12, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())
    call_command("clv", "--sync", stdout=io.StringIO())
    return TrainingRun.objects.get(is_active=True)


def test_each_segment_card_shows_its_expected_value_and_share_still_buying(valued, marketer):
    page = client_for(marketer).get("/").content.decode()

    for cluster in Cluster.objects.filter(run=valued).select_related("segment"):
        members = ClusterAssignment.objects.filter(cluster=cluster).values("customer_id")
        values = CustomerValue.objects.filter(customer_id__in=members)
        total = values.aggregate(t=Sum("expected_value"))["t"]
        alive = values.aggregate(a=Avg("p_alive"))["a"]
        card = page[page.index(f'id="segment-{cluster.segment_id}"') :].split("</article>")[0]
        shown = re.search(r"Lifetime value: <strong>([\d,]+)</strong>", card).group(1)
        assert int(shown.replace(",", "")) == round(total)
        assert f"still buying {alive * 100:.0f} %" in card.replace("\xa0", " ")


def test_the_rfm_table_has_value_per_customer_and_share_still_buying(valued, marketer):
    page = client_for(marketer).get("/").content.decode()

    table = page[page.index('id="rfm-groups"') :]
    assert '<th scope="col">Per customer</th><th scope="col">Still buying</th>' in table
    champions = table[table.index('<th scope="row">Champions</th>') :].split("</tr>")[0]
    assert champions.count("–") == 0  # every column filled once a CLV run is active


def test_without_a_clv_run_the_cards_say_nothing_about_value(db, marketer):
    call_command("generate_customers", count=300, seed=12, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())

    assert "Lifetime value:" not in client_for(marketer).get("/").content.decode()
